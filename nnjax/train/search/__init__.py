"""Hyper-parameter search as populations of one compiled program.

:func:`pbt` (population-based training, :mod:`.population_based`) and :func:`lr_find` (the
learning-rate range test, :mod:`.lr_range`).
"""

from nnjax.train.search.lr_range import LRFindResult, lr_find
from nnjax.train.search.population_based import (LogUniform, PBTResult, Uniform, lineage_history, pbt, replay,
                                                 replay_fit, with_learning_rate)

__all__ = ["LRFindResult", "LogUniform", "PBTResult", "Uniform", "lineage_history", "lr_find", "pbt", "replay",
           "replay_fit", "with_learning_rate"]
