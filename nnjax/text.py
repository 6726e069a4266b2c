"""Text classifiers on token ids, the public face: the model of :mod:`nnjax.nn.text` plus :func:`fit_text`.

:mod:`nnjax.nn.text` holds the embedding bag (the mean of learned word vectors feeding an
:class:`nnjax.MLP`), its padding and unknown-word rules and its equivalence with
bag-of-words; this module adds training, which sits a floor above the forward pass.
:func:`fit_text` is :func:`nnjax.fit` on an :class:`EmbeddingBag`, so text models share the
loop, its key schedule, early stopping, resume, the guard and the diagnostics.

Example:
  >>> import jax, numpy as np
  >>> from nnjax import text
  >>> model = text.EmbeddingBag(n_ids=10, dim=4)
  >>> result = text.fit_text(jax.random.key(0), model, (np.array([[2, 3], [4, 0]]), np.array([1.0, 0.0])),
  ...                        loss="binary_cross_entropy", optimizer="sgd", epochs=2, batch_size=2)
  >>> result.params["embedding"].shape
  (10, 4)
"""

from __future__ import annotations

from typing import Any

from nnjax._base.typing import PRNGKey
from nnjax.nn.text import EmbeddingBag, TextModel, apply, check_ids, init, pool, predict, token_scores
from nnjax.train.fitting import FitResult, fit
from nnjax.train.options import Options, takes_settings

__all__ = [
    "EmbeddingBag",
    "TextFitResult",
    "TextModel",
    "apply",
    "check_ids",
    "fit_text",
    "init",
    "pool",
    "predict",
    "token_scores",
]

#: :func:`fit_text` returns an :class:`nnjax.FitResult` (``params``, ``history``, ``key`` and more).
TextFitResult = FitResult


@takes_settings
def fit_text(key: PRNGKey, model: EmbeddingBag, data: tuple[Any, Any], options: Options | None = None, *,
             params: dict | None = None, resume: FitResult | None = None, progress: Any = False,
             progress_every: int | None = None, **settings: Any) -> FitResult:
    """Trains the embedding table and the head together: :func:`nnjax.fit` on the text model.

    The same compiled core as every model, so text models get early stopping, ``resume=``,
    sample weights, the non-finite step guard and the per-layer diagnostics (layer 0 is the
    embedding table). ``nnjax.fit(key, model, ...)`` with the :class:`EmbeddingBag` itself is
    the same call. Same key schedule: parameters from ``split_run_key(key)[0]``,
    epoch ``e`` visits ``training.epoch_permutation(key, e, n)``, minibatch ``s`` draws
    dropout from ``training.batch_key(key, e, s)``. Every text is used once per epoch
    (a short last batch is padded with weight-0 rows).

    Args:
      key: the run key.
      model: the topology.
      data: ``(ids, y)``: token ids ``(n, max_len)`` and targets as ``loss`` expects
        (0/1 for "binary_cross_entropy", class ids for "softmax_cross_entropy").
      options: the settings as an :class:`~nnjax.train.options.Options` record (keywords
        replace its fields).
      params: initial parameters (default :func:`init`).
      resume, progress, progress_every: as in :func:`nnjax.fit`.
      **settings: the fields of :class:`~nnjax.train.options.Options` (``loss``, ``optimizer``,
        ``epochs``, ``batch_size``, ``early_stopping``, ``sample_weight``, ...). ``l2`` penalises
        the head's weight matrices (the table is not penalised).

    Returns:
      A :class:`nnjax.FitResult`; ``history`` as :func:`nnjax.fit` records it ("loss",
      "skipped", "accuracy", "val_loss"/"val_accuracy" with validation data, per-layer keys).

    Example:
      >>> import jax, optax, numpy as np
      >>> ids, y = np.array([[2, 2], [3, 0], [2, 0], [3, 3]]), np.array([1, 0, 1, 0])
      >>> model = EmbeddingBag(n_ids=4, dim=2)
      >>> r = fit_text(jax.random.key(0), model, (ids, y), loss="binary_cross_entropy",
      ...              optimizer=optax.adam(0.1), epochs=40, batch_size=2)
      >>> (np.asarray(predict(r.params, ids, model))[:, 0] > 0.5).astype(int).tolist()
      [1, 0, 1, 0]
    """
    if not isinstance(data, (tuple, list)) or len(data) != 2:
        raise ValueError(f"data: expected a pair (ids, y), got {type(data).__name__}")
    return fit(key, model, data, options, params=params, resume=resume, progress=progress,
               progress_every=progress_every, **settings)
