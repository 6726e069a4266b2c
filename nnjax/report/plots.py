"""Plots of a training run: loss and metric curves, per-layer gradient norms, a confusion matrix.

Every function returns a ``matplotlib.figure.Figure`` drawn with the Agg canvas (no pyplot, no
global backend change, no display needed) and, given ``path``, also writes it as a PNG. Files are
written atomically (a temporary file renamed into place). Histories from a population (arrays
with a leading seed axis) are drawn as one thin line per member and their mean in bold.

matplotlib is an optional dependency (``pip install 'nnjax[plots]'``); it is imported only when a
plot is made.

Example:
  >>> import numpy as np
  >>> from nnjax import plots
  >>> history = {"loss": np.linspace(1.0, 0.1, 20), "val_loss": np.linspace(1.1, 0.3, 20)}
  >>> fig = plots.plot_history(history)
  >>> [ax.get_title() for ax in fig.axes]
  ['loss']
"""

from __future__ import annotations

import pathlib
from typing import Any, Sequence

import numpy as np

from nnjax._base.files import atomic_write

__all__ = ["confusion_matrix", "plot_confusion_matrix", "plot_gradient_norms", "plot_history", "plot_lr_find",
           "plot_pbt_schedules", "plot_score_vs_settings", "plot_search_curves", "save_figure"]

_METRIC_PANELS = (("accuracy", "accuracy"), ("r2", "R^2"), ("mse", "MSE"))


def _figure(width: float, height: float) -> Any:
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError as err:
        raise ImportError(
            "nnjax.plots needs matplotlib, which is not installed: pip install 'nnjax[plots]'"
        ) from err
    fig = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def save_figure(fig: Any, path: Any, *, dpi: int = 110) -> pathlib.Path:
    """Writes ``fig`` as a PNG at ``path`` atomically; returns the path."""
    return atomic_write(path, lambda stream: fig.savefig(stream, format="png", dpi=dpi), binary=True)


def _finish(fig: Any, path: Any) -> Any:
    if path is not None:
        save_figure(fig, path)
    return fig


def _curves(ax: Any, values: Any, label: str, color: str, style: str = "-") -> bool:
    """Draws a per-epoch curve (or one per population member plus the mean); False if all NaN."""
    data = np.asarray(values, np.float64)
    data = data.reshape(1, -1) if data.ndim == 1 else data.reshape(-1, data.shape[-1])
    if not np.isfinite(data).any():
        return False
    epochs = np.arange(1, data.shape[1] + 1)
    if data.shape[0] > 1:
        for row in data:
            ax.plot(epochs, row, style, color=color, alpha=0.25, linewidth=0.8)
        with np.errstate(all="ignore"):
            mean = np.nanmean(np.where(np.isfinite(data), data, np.nan), axis=0)
        ax.plot(epochs, mean, style, color=color, linewidth=2.0, label=f"{label} (mean of {data.shape[0]})")
    else:
        ax.plot(epochs, data[0], style, color=color, linewidth=1.8, label=label)
    return True


def plot_history(history: dict[str, Any], *, path: Any = None, title: str | None = None) -> Any:
    """Loss curves (train and validation) and, when recorded, accuracy or R^2 curves.

    Args:
      history: a ``FitResult.history`` (arrays of shape ``(epochs,)`` or ``(members, epochs)``).
      path: where to write a PNG (optional).
      title: a title for the figure.

    Returns:
      The figure: one panel for the loss and one per metric found.

    Raises:
      ValueError: if ``history`` has no "loss" entry.
    """
    if "loss" not in history:
        raise ValueError(f"history: expected a 'loss' entry, got keys {sorted(history)}")
    panels = [("loss", "loss")]
    panels += [(key, label) for key, label in _METRIC_PANELS if key in history or f"val_{key}" in history]
    fig = _figure(5.0 * len(panels), 3.8)
    for ax, (key, label) in zip(fig.subplots(1, len(panels), squeeze=False)[0], panels):
        if key in history:
            _curves(ax, history[key], f"train {label}", "tab:blue")
        if f"val_{key}" in history:
            _curves(ax, history[f"val_{key}"], f"validation {label}", "tab:orange", "--")
        ax.set_xlabel("epoch")
        ax.set_ylabel(label)
        ax.set_title(label)
        if key == "loss" and _all_positive(history, key):
            ax.set_yscale("log")
        ax.grid(alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend()
    if title:
        fig.suptitle(title)
    return _finish(fig, path)


def _all_positive(history: dict, key: str) -> bool:
    values = [np.asarray(history[k], np.float64) for k in (key, f"val_{key}") if k in history]
    finite = np.concatenate([v[np.isfinite(v)].ravel() for v in values])
    return finite.size > 0 and bool(np.all(finite > 0))


def plot_gradient_norms(history: dict[str, Any], *, path: Any = None, title: str | None = None) -> Any:
    """Per-layer gradient norms over epochs, on a log scale (``history["layer_grad_norm"]``).

    Vanishing gradients show as early layers' curves orders of magnitude below the last layer's;
    exploding ones as curves that climb. A population is averaged over its members.

    Raises:
      ValueError: if the history has no per-layer gradient norms (``fit(..., diagnostics=False)``).
    """
    if "layer_grad_norm" not in history:
        raise ValueError("history: expected 'layer_grad_norm' (recorded by fit(..., diagnostics=True)), got none")
    norms = np.asarray(history["layer_grad_norm"], np.float64)
    if norms.ndim == 3:  # (members, epochs, layers)
        with np.errstate(all="ignore"):
            norms = np.nanmean(norms, axis=0)
    fig = _figure(6.0, 4.0)
    ax = fig.subplots()
    epochs = np.arange(1, norms.shape[0] + 1)
    colors = _layer_colors(norms.shape[1])
    for layer in range(norms.shape[1]):
        column = np.where(norms[:, layer] > 0, norms[:, layer], np.nan)
        name = "output layer" if layer == norms.shape[1] - 1 else f"layer {layer + 1}"
        ax.plot(epochs, column, color=colors[layer], label=name)
    if np.isfinite(np.where(norms > 0, norms, np.nan)).any():
        ax.set_yscale("log")
    ax.set_xlabel("epoch")
    ax.set_ylabel("||dL/dW|| (mean over the epoch's steps)")
    ax.set_title(title or "gradient norm per layer")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize="small")
    return _finish(fig, path)


def _layer_colors(n: int) -> list:
    from matplotlib import colormaps

    if n <= 10:
        return [colormaps["tab10"](i) for i in range(n)]
    cmap = colormaps["viridis"]
    return [cmap(0.9 * i / (n - 1)) for i in range(n)]  # stop before viridis' pale yellow end


def confusion_matrix(y_true: Any, y_pred: Any, n_classes: int | None = None) -> np.ndarray:
    """Counts ``C[i, j]`` of examples of true class ``i`` predicted as class ``j``.

    Example:
      >>> confusion_matrix([0, 1, 1], [0, 1, 0]).tolist()
      [[1, 0], [1, 1]]
    """
    true = np.asarray(y_true).reshape(-1).astype(np.int64)
    pred = np.asarray(y_pred).reshape(-1).astype(np.int64)
    if true.shape != pred.shape:
        raise ValueError(f"y_pred: expected {true.shape[0]} predictions like y_true, got {pred.shape[0]}")
    if true.size and (true.min() < 0 or pred.min() < 0):
        raise ValueError("y_true, y_pred: expected class indices >= 0, got negative values")
    k = int(n_classes) if n_classes is not None else int(max(true.max(initial=-1), pred.max(initial=-1)) + 1)
    if true.size and max(true.max(), pred.max()) >= k:
        raise ValueError(f"n_classes: expected more than the largest class index, got {k}")
    counts = np.zeros((k, k), np.int64)
    np.add.at(counts, (true, pred), 1)
    return counts


def plot_confusion_matrix(
    y_true: Any,
    y_pred: Any,
    *,
    class_names: Sequence[str] | None = None,
    path: Any = None,
    title: str | None = None,
) -> Any:
    """A confusion-matrix heat map (rows: true class, columns: predicted), with counts in cells.

    Args:
      y_true, y_pred: integer class indices, shape ``(n,)``.
      class_names: names for the classes (their number sets the matrix size).
      path: where to write a PNG (optional).
      title: the start of the title; the accuracy and the count are appended.
    """
    counts = confusion_matrix(y_true, y_pred, None if class_names is None else len(class_names))
    k = counts.shape[0]
    names = [str(c) for c in class_names] if class_names is not None else [str(i) for i in range(k)]
    side = min(3.0 + 0.45 * k, 12.0)
    fig = _figure(side + 1.0, side)
    ax = fig.subplots()
    image = ax.imshow(counts, cmap="Blues")
    fig.colorbar(image, ax=ax, shrink=0.8)
    ax.set_xticks(range(k), names, rotation=45 if max(map(len, names), default=0) > 3 else 0)
    ax.set_yticks(range(k), names)
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    if k <= 20:
        threshold = counts.max() / 2 if counts.size else 0
        for i in range(k):
            for j in range(k):
                ax.text(j, i, str(counts[i, j]), ha="center", va="center", fontsize="small",
                        color="white" if counts[i, j] > threshold else "black")
    total = counts.sum()
    accuracy = np.trace(counts) / total if total else float("nan")
    ax.set_title(f"{title or 'confusion matrix'} (accuracy {accuracy:.3f}, n={total})")
    return _finish(fig, path)


def plot_lr_find(found: Any, *, path: Any = None, title: str | None = None) -> Any:
    """A learning-rate range test (:func:`nnjax.lr_find`): loss against rate on a log axis.

    Each seed's raw minibatch losses are drawn faint and its smoothed loss (up to where it
    diverged) solid; the suggestion is a vertical line and the band over seeds a shaded span.

    Args:
      found: an :class:`nnjax.train.search.LRFindResult` (anything with ``rates``, ``losses``,
        ``smoothed``, ``suggestion`` and ``band``).
      path: where to write a PNG (optional).
      title: a title for the figure.

    Example:
      >>> import numpy as np
      >>> from types import SimpleNamespace
      >>> rates = np.geomspace(1e-4, 1.0, 50)
      >>> loss = np.stack([1 + (np.log10(rates) + 2) ** 2, 1.1 + (np.log10(rates) + 2) ** 2])
      >>> fig = plot_lr_find(SimpleNamespace(rates=rates, losses=loss, smoothed=loss, suggestion=1e-3,
      ...                                    band=(8e-4, 1.2e-3)))
      >>> fig.axes[0].get_xscale()
      'log'
    """
    rates = np.asarray(found.rates, np.float64)
    raw = np.atleast_2d(np.asarray(found.losses, np.float64))
    smoothed = np.atleast_2d(np.asarray(found.smoothed, np.float64))
    fig = _figure(6.0, 4.0)
    ax = fig.subplots()
    colors = [f"C{i % 10}" for i in range(len(raw))]
    for i, (row, line) in enumerate(zip(raw, smoothed)):
        shown = np.isfinite(line)
        ax.plot(rates[shown], np.where(np.isfinite(row), row, np.nan)[shown], color=colors[i], alpha=0.2,
                linewidth=0.7)
        ax.plot(rates[shown], line[shown], color=colors[i], linewidth=1.6, label=f"seed {i}")
    low, high = found.band
    ax.axvspan(low, high, color="0.5", alpha=0.2, label="band over seeds")
    ax.axvline(found.suggestion, color="black", linewidth=1.5, label=f"suggestion {found.suggestion:.3g}")
    ax.set_xscale("log")
    ax.set_xlabel("learning rate")
    ax.set_ylabel("minibatch loss")
    ax.set_title(title or "learning-rate range test")
    ax.grid(alpha=0.3)
    ax.legend(fontsize="small")
    return _finish(fig, path)


def plot_search_curves(leaderboard: Sequence[dict], rungs: Sequence[int], *, metric: str = "score",
                       path: Any = None, title: str | None = None) -> Any:
    """Every member's validation score at the end of each rung it reached (x: epochs trained).

    Args:
      leaderboard: rows with ``scores`` (one per rung reached), as :func:`nnjax.successive_halving` returns.
      rungs: cumulative epochs at the end of each rung (:func:`nnjax.search.rungs`).
    """
    fig = _figure(6.0, 4.0)
    ax = fig.subplots()
    for row in leaderboard:
        ax.plot(list(rungs)[:len(row["scores"])], row["scores"], marker="o", alpha=0.5, lw=1)
    ax.set_xlabel("epochs trained")
    ax.set_ylabel(metric)
    ax.set_title(title or f"{len(leaderboard)} members: {metric} at each rung")
    return _finish(fig, path)


def plot_score_vs_settings(leaderboard: Sequence[dict], names: Sequence[str], *, metric: str = "score",
                           path: Any = None, title: str | None = None) -> Any:
    """One panel per hyper-parameter: each member's last score against its value (log axis when
    the values are positive and span a factor 10 or more); members that reached more rungs darker."""
    fig = _figure(3.2 * max(1, len(names)), 3.2)
    axes = np.atleast_1d(fig.subplots(1, max(1, len(names))))
    depth = np.array([len(r["scores"]) for r in leaderboard], float)
    shade = 0.25 + 0.75 * depth / max(depth.max(), 1.0)
    for ax, name in zip(axes, names):
        values = np.array([r[name] for r in leaderboard], float)
        ax.scatter(values, [r["score"] for r in leaderboard], c=shade, cmap="Blues", vmin=0, vmax=1, s=18)
        if values.min() > 0 and values.max() >= 10 * values.min():
            ax.set_xscale("log")
        ax.set_xlabel(name)
    axes[0].set_ylabel(metric)
    fig.suptitle(title or f"{metric} against each hyper-parameter")
    return _finish(fig, path)


def plot_pbt_schedules(found: Any, *, path: Any = None, title: str | None = None) -> Any:
    """Population-based training's hyper-parameter schedules: one panel per explored setting, each
    member's lineage (:func:`nnjax.search.replay`) as a step line over the epochs, the best member
    in bold black (log axis when the values are positive and span a factor 10 or more).

    Args:
      found: a :class:`nnjax.search.PBTResult`.
      path: where to write a PNG (optional).
      title: a title for the figure.
    """
    from nnjax.train.search.population_based import replay

    names = list(found.settings)
    generations, size = np.shape(found.parents)
    k = found.epochs_per_generation
    edges = np.arange(generations + 1) * k
    fig = _figure(4.0 * max(1, len(names)), 3.4)
    axes = np.atleast_1d(fig.subplots(1, max(1, len(names))))
    best = found.best
    for ax, name in zip(axes, names):
        every = []
        for slot in range(size):
            values = [step[name] for step in replay(found, slot)]
            every.extend(values)
            chosen = slot == best
            ax.stairs(values, edges, color="black" if chosen else f"C{slot % 10}", linewidth=2.2 if chosen else 0.8,
                      alpha=1.0 if chosen else 0.5, baseline=None, label="best member" if chosen else None)
        every = np.asarray(every, float)
        if every.min() > 0 and every.max() >= 10 * every.min():
            ax.set_yscale("log")
        ax.set_xlabel("epoch")
        ax.set_ylabel(name)
        ax.legend(fontsize="small")
    fig.suptitle(title or f"PBT: {size} members' settings, generation by generation")
    return _finish(fig, path)
