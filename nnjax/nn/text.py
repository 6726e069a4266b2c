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

import dataclasses
from typing import Any, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from nnjax.nn import network
from nnjax._base import validation as checks
from nnjax._base.typing import PAD_ID, UNKNOWN_ID, PRNGKey

__all__ = [
    "EmbeddingBag",
    "TextModel",
    "apply",
    "check_ids",
    "init",
    "pool",
    "predict",
    "token_scores",
]


@dataclasses.dataclass(frozen=True)
class EmbeddingBag:
    """The topology of an embedding-bag text model (static and hashable).

    Args:
      n_ids: rows of the embedding table: ``BagOfWords.n_ids`` (vocabulary + padding + unknown).
      dim: the length of a word vector.
      hidden: widths of the head's hidden layers (``()``: the pooled vector feeds the output).
      n_outputs: output units (1 for a sigmoid spam score, k for a k-class softmax).
      activation: the head's hidden activation.
      output: the head's output activation ("sigmoid", "softmax", "identity", ...).
      dropout: the head's hidden-layer dropout rate (probability of dropping a unit).
      embedding_stddev: standard deviation of the initial word vectors.
      ignore_unknown: mask ``UNKNOWN_ID`` tokens like padding instead of learning a vector for them.

    Raises:
      ValueError: ``n_ids < 3`` (padding, unknown and at least one word), ``dim < 1``,
        or a bad head setting (from :class:`nnjax.MLP`).
    """

    n_ids: int
    dim: int
    hidden: Sequence[int] = ()
    n_outputs: int = 1
    activation: str = "relu"
    output: str = "sigmoid"
    dropout: float = 0.0
    embedding_stddev: float = 0.1
    ignore_unknown: bool = False

    def as_model(self) -> "TextModel":
        """This topology as a model of the training core (:func:`nnjax.fit` calls it)."""
        return TextModel(self)

    def __post_init__(self):
        if checks.check_positive_int(self.n_ids, "n_ids") < 3:
            raise ValueError(f"n_ids: expected at least 3 (padding, unknown and one word; use BagOfWords.n_ids), "
                             f"got {self.n_ids}")
        checks.check_positive_int(self.dim, "dim")
        checks.check_positive(self.embedding_stddev, "embedding_stddev")
        object.__setattr__(self, "hidden", tuple(int(h) for h in self.hidden))
        self.head  # builds the MLP, which checks its own settings

    @property
    def head(self) -> network.MLP:
        """The MLP on top of the pooled word vectors: ``MLP((dim, *hidden, n_outputs))``."""
        return network.MLP((self.dim, *self.hidden, self.n_outputs), activation=self.activation,
                           output=self.output, dropout=self.dropout)


def init(key: PRNGKey, model: EmbeddingBag) -> dict:
    """Draws ``{"embedding": (n_ids, dim), "mlp": [...]}``; the padding row starts (and stays) zero.

    The table uses ``fold_in(key, 0)``, the head ``nnjax.init(fold_in(key, 1), model.head)``.
    """
    table = model.embedding_stddev * jax.random.normal(jax.random.fold_in(key, 0), (model.n_ids, model.dim))
    table = table.at[PAD_ID].set(0.0)
    return {"embedding": table, "mlp": network.init(jax.random.fold_in(key, 1), model.head)}


def check_ids(ids: Any, n_ids: int, name: str = "ids") -> np.ndarray:
    """Checks token ids: integers in ``[0, n_ids)``, shape ``(n_texts, max_len)``; returns int32.

    Raises:
      TypeError: float or other non-integer ids.
      ValueError: not 2-D, empty, or ids outside ``[0, n_ids)``.

    Example:
      >>> check_ids([[2, 9]], n_ids=5)
      Traceback (most recent call last):
      ...
      ValueError: ids: expected token ids in [0, 5) (the embedding has n_ids=5 rows), got 9
    """
    arr = np.asarray(ids)
    if arr.dtype.kind not in "iu":
        raise TypeError(f"{name}: expected integer token ids (BagOfWords.tokens_to_ids), got dtype {arr.dtype}")
    arr = checks.check_features(arr, name, allow_int=True)
    bad = arr[(arr < 0) | (arr >= n_ids)]
    if bad.size:
        raise ValueError(f"{name}: expected token ids in [0, {n_ids}) (the embedding has n_ids={n_ids} rows), "
                         f"got {int(bad[0])}")
    return arr


def pool(params: dict, ids: jax.Array, model: EmbeddingBag) -> jax.Array:
    """The mean word vector of each text, shape ``(n_texts, dim)``; zeros for an empty text."""
    ids = jnp.asarray(ids)
    mask = ids > UNKNOWN_ID if model.ignore_unknown else ids != PAD_ID
    mask = mask.astype(params["embedding"].dtype)
    vectors = jnp.take(params["embedding"], ids, axis=0)
    total = jnp.einsum("nt,ntd->nd", mask, vectors)
    return total / jnp.maximum(jnp.sum(mask, axis=1, keepdims=True), 1.0)


def _ids_for(ids: Any, model: EmbeddingBag) -> Any:
    return ids if isinstance(ids, jax.core.Tracer) else check_ids(ids, model.n_ids)


def apply(params: dict, ids: Any, model: EmbeddingBag, *, key: PRNGKey | None = None,
          train: bool = False) -> jax.Array:
    """The head's pre-activation output (logits) for token ids, shape ``(n_texts, n_outputs)``.

    ``key`` is needed with ``train=True`` when the head has dropout.
    """
    with jax.named_scope("embedding_bag"):
        pooled = pool(params, _ids_for(ids, model), model)
    return network.apply(params["mlp"], pooled, model.head, key=key, train=train)


def predict(params: dict, ids: Any, model: EmbeddingBag) -> jax.Array:
    """The output activation of :func:`apply` in evaluation mode (probabilities for sigmoid/softmax)."""
    pooled = pool(params, _ids_for(ids, model), model)
    return network.predict(params["mlp"], pooled, model.head)


def token_scores(params: dict, model: EmbeddingBag) -> jax.Array:
    """The logits of every one-word text: ``head(E[i])`` for each id, shape ``(n_ids, n_outputs)``.

    Row ``j + 2`` scores vocabulary word ``j``: for a sigmoid spam detector, the most
    positive rows are the most spam-like words. Row 0 (padding) is the empty text's score.
    """
    return network.apply(params["mlp"], params["embedding"], model.head)


@dataclasses.dataclass(frozen=True)
class TextModel:
    """An :class:`EmbeddingBag` as a model of the training core (see :mod:`nnjax.model`)."""

    bag: EmbeddingBag

    name = "EmbeddingBag"

    @property
    def n_outputs(self) -> int:
        return self.bag.n_outputs

    @property
    def output(self) -> str:
        return self.bag.output

    @property
    def hidden_activations(self) -> tuple[str, ...]:
        return self.bag.head.hidden_activations

    def init(self, key: PRNGKey) -> dict:
        return init(key, self.bag)

    def start_state(self) -> Any:
        return network.init_state(self.bag.head)

    def core_apply(self, params, state, ids, *, key=None, train=False, dropout=None, row_weights=None):
        with jax.named_scope("embedding_bag"):
            pooled = pool(params, ids, self.bag)
        return network.apply_with_state(params["mlp"], state, pooled, self.bag.head, key=key, train=train,
                                        dropout=dropout, row_weights=row_weights, return_hidden=True)

    def layer_weights(self, tree: Any) -> list:
        """The embedding table first, then the head's weight matrices."""
        return [tree["embedding"]] + [layer["w"] for layer in tree["mlp"]]

    def check_inputs(self, ids: Any, name: str = "x") -> np.ndarray:
        return check_ids(ids, self.bag.n_ids, "ids" if name == "x" else name.replace(" x", " ids"))

    def output_width(self, ids: Any = None) -> int:
        return self.bag.n_outputs

