"""Hyper-parameter search over compiled populations: search spaces (:mod:`.space`)."""

from nnjax.train.search.halving import HalvingResult, rungs, successive_halving
from nnjax.train.search.space import METHODS, parse_range, parse_space, sample

__all__ = ["HalvingResult", "METHODS", "parse_range", "parse_space", "rungs", "sample", "successive_halving"]
