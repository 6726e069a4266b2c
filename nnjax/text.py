"""Text classifiers on token ids: an embedding bag (mean of learned word vectors) and an MLP head.

A text arrives as a row of token ids from :meth:`nnjax.data.BagOfWords.tokens_to_ids`
(``PAD_ID = 0`` pads, ``UNKNOWN_ID = 1`` stands for a word outside the vocabulary,
vocabulary word ``j`` has id ``j + 2``). The model looks every id up in an embedding
table, averages the vectors of the text's real tokens, and feeds the average to an
ordinary :class:`nnjax.MLP`::

    params = {"embedding": (n_ids, dim), "mlp": nnjax.init(...) of MLP((dim, *hidden, n_outputs))}
    pooled = sum_t mask_t E[ids_t] / max(1, sum_t mask_t)         # mask: id != PAD_ID
    logits = nnjax.apply(params["mlp"], pooled, head)

The table is trained with the head by :func:`nnjax.fit` itself (:func:`fit_text` is the same
call): an :class:`EmbeddingBag` is a model of the training core (:class:`TextModel`), so text
models share the loop, its key schedule, early stopping, resume, the guard and the diagnostics.

Documented behaviour at the edges:

* padding never contributes (its row of the table stays zero and gets no gradient);
* a text with no tokens (all padding) pools to the zero vector, so its prediction is
  the head's response to zeros (its biases only);
* unknown words share one learned vector (row 1), or are masked like padding with
  ``ignore_unknown=True`` (then a text of unknown words only is an empty text).

Equivalence with bag-of-words: with no unknown words, the pooled vector equals
``(counts / counts.sum()) @ E[2:]``, a linear layer on length-normalised
:meth:`~nnjax.data.BagOfWords.transform` counts. The embedding bag is that layer,
computed by lookup instead of a (texts x vocabulary) product.

Example:
  >>> import jax, numpy as np
  >>> from nnjax import text
  >>> model = text.EmbeddingBag(n_ids=10, dim=4)
  >>> params = text.init(jax.random.key(0), model)
  >>> params["embedding"].shape
  (10, 4)
  >>> ids = np.array([[2, 3, 0], [0, 0, 0]])          # a two-word text and an empty one
  >>> text.apply(params, ids, model).shape
  (2, 1)
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
