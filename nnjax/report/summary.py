"""A model's summary: its layers, shapes, activations and parameter counts, as a table.

:func:`summary` describes an :class:`nnjax.MLP` (or a text :class:`nnjax.text.EmbeddingBag`)
from its topology alone, so it costs no JAX call. Per dense layer it counts the weights
``n_in * n_out`` and biases ``n_out``, the batch-norm scale and shift (``2 * n_out``) and a residual
projection ``n_in * n_out`` where a skip joins layers of different widths; batch-norm running
statistics (``2 * n_out`` per hidden layer) are state, counted apart from the trained parameters.

Example:
  >>> import nnjax
  >>> s = nnjax.summary(nnjax.MLP((4, 8, 3), activation="tanh", output="softmax", dropout=0.5))
  >>> s.total_params, [row.params for row in s.rows]
  (67, [40, 27])
  >>> print(s)  # doctest: +NORMALIZE_WHITESPACE
  MLP 4-8-3
  layer    shape   activation  dropout  batch norm  skip  params
  dense_1  4 -> 8  tanh        0.5      no          -         40
  output   8 -> 3  softmax     -        -           -         27
  total parameters: 67 (trained), 0 (state)
"""

from __future__ import annotations

from typing import Any, NamedTuple

__all__ = ["LayerSummary", "Summary", "summary"]


class LayerSummary(NamedTuple):
    """One row of a :class:`Summary`."""

    name: str
    shape: str  # e.g. "64 -> 128"
    activation: str
    dropout: float | None  # None where dropout never applies (the output layer, an embedding)
    batch_norm: bool | None
    skip: str  # "identity", "projection" or "-"
    params: int
    state: int = 0  # batch-norm running statistics


class Summary(NamedTuple):
    """A model's layers and parameter counts; ``str(summary)`` is the table."""

    title: str
    rows: tuple[LayerSummary, ...]

    @property
    def total_params(self) -> int:
        """The number of trained parameters (weights, biases, batch-norm scales and shifts, projections)."""
        return sum(row.params for row in self.rows)

    @property
    def total_state(self) -> int:
        """The number of non-trained state values (batch-norm running means and variances)."""
        return sum(row.state for row in self.rows)

    def __str__(self) -> str:
        header = ("layer", "shape", "activation", "dropout", "batch norm", "skip", "params")
        cells = [header] + [(r.name, r.shape, r.activation, "-" if r.dropout is None else f"{r.dropout:g}",
                             "-" if r.batch_norm is None else ("yes" if r.batch_norm else "no"), r.skip,
                             f"{r.params:,}") for r in self.rows]
        widths = [max(len(row[j]) for row in cells) for j in range(len(header))]
        lines = [self.title]
        for row in cells:
            text = "  ".join(c.ljust(w) for c, w in zip(row[:-1], widths[:-1]))
            lines.append(f"{text}  {row[-1]:>{widths[-1]}}")
        lines.append(f"total parameters: {self.total_params:,} (trained), {self.total_state:,} (state)")
        return "\n".join(lines)


def _name(activation: Any) -> str:
    return activation if isinstance(activation, str) else getattr(activation, "__name__", repr(activation))


def _mlp_rows(net: Any, prefix: str = "") -> list[LayerSummary]:
    rows = []
    for i, (n_in, n_out) in enumerate(zip(net.sizes[:-1], net.sizes[1:])):
        shape, dense = f"{n_in} -> {n_out}", n_in * n_out + n_out
        if i == net.n_hidden:
            rows.append(LayerSummary(f"{prefix}output", shape, _name(net.output), None, None, "-", dense))
            continue
        skip = "-"
        if net.has_skip(i):
            skip = "identity" if n_in == n_out else "projection"
        params = dense + (2 * n_out if net.batch_norm else 0) + (n_in * n_out if skip == "projection" else 0)
        rows.append(LayerSummary(f"{prefix}dense_{i + 1}", shape, _name(net.hidden_activations[i]),
                                 net.dropout_rates[i], net.batch_norm, skip, params,
                                 2 * n_out if net.batch_norm else 0))
    return rows


def summary(model: Any) -> Summary:
    """The layers, shapes, activations, dropout, batch norm, skips and parameter counts of ``model``.

    Args:
      model: an :class:`nnjax.MLP` or a :class:`nnjax.text.EmbeddingBag`.

    Returns:
      A :class:`Summary`: ``.rows`` (one :class:`LayerSummary` per layer), ``.total_params``,
      ``.total_state``; ``str()`` gives the table.

    Raises:
      TypeError: for anything else.

    Example:
      >>> import nnjax
      >>> nnjax.summary(nnjax.MLP((2, 4, 8, 1), batch_norm=True, residual=True)).total_params
      117
    """
    sizes = getattr(model, "sizes", None)
    if sizes is not None and hasattr(model, "hidden_activations"):
        title = f"MLP {'-'.join(map(str, sizes))}"
        if getattr(model, "compute_dtype", None) is not None:
            title += f" ({model.dtype} parameters, {model.compute_dtype} compute)"
        return Summary(title, tuple(_mlp_rows(model)))
    if hasattr(model, "n_ids") and hasattr(model, "head"):
        head = model.head
        embedding = LayerSummary("embedding", f"{model.n_ids} ids -> {model.dim}", "mean pool", None, None, "-",
                                 model.n_ids * model.dim)
        return Summary(f"EmbeddingBag {model.n_ids}x{model.dim} + MLP {'-'.join(map(str, head.sizes))}",
                       (embedding, *_mlp_rows(head, "head_")))
    raise TypeError(f"model: expected an nnjax.MLP or nnjax.text.EmbeddingBag, got {type(model).__name__}")
