"""Hyper-parameter search as populations of one compiled program.

Search spaces (:mod:`.space`: the range records :class:`Uniform`, :class:`LogUniform` and
:class:`Choice` of :mod:`nnjax.sweeps`, one set for every search), successive halving that
compacts survivors between rungs (:mod:`.halving`), population-based training (:func:`pbt`,
:mod:`.population_based`) and the learning-rate range test (:func:`lr_find`, :mod:`.lr_range`).
"""

from nnjax.train.search.halving import HalvingResult, programs, rungs, successive_halving
from nnjax.train.search.lr_range import LRFindResult, lr_find
from nnjax.train.search.population_based import PBTResult, lineage_history, pbt, replay, replay_fit, with_learning_rate
from nnjax.train.search.space import METHODS, Choice, LogUniform, Uniform, parse_range, parse_space, sample

__all__ = ["METHODS", "Choice", "HalvingResult", "LRFindResult", "LogUniform", "PBTResult", "Uniform",
           "lineage_history", "lr_find", "parse_range", "parse_space", "pbt", "programs", "replay", "replay_fit",
           "rungs", "sample", "successive_halving", "with_learning_rate"]
