"""``nnjax.diagnose``: read a run's gradient-health history and say what is wrong with it.

The verdict follows the usual signs, each measured on the per-layer statistics that
``fit(..., diagnostics=True)`` records (see :mod:`nnjax.diagnostics`):

* **exploding**: NaN/Inf gradients, steps skipped by the NaN guard or a non-finite loss;
  early layers' gradients orders of magnitude above the output layer's (the backward signal
  grows toward the input, whatever else is seen: saturation is then said in a note);
  or two of these three together: gradient entries consistently above 1.0 in
  magnitude, weights growing fast, a loss that swings (or does not improve) --
  unless saturation (below) explains them and the weights are not growing.
* **vanishing**: a sigmoid/tanh hidden layer saturated from the first epoch to the
  last (most of its activations in the flat tails, where almost no gradient passes
  back: the sign of a too-large init, remedied by Xavier/Glorot init); early layers'
  gradients orders of magnitude below the output layer's; or the loss barely
  improving while early layers' weights barely change or shrink towards 0.
* **healthy**: neither.

Example:
  >>> import numpy as np, nnjax
  >>> epochs, layers = 5, 4
  >>> history = {
  ...     "loss": np.linspace(2.3, 2.29, epochs),
  ...     "layer_grad_norm": np.tile([1e-9, 1e-6, 1e-3, 1e-1], (epochs, 1)),
  ...     "layer_weight_norm": np.ones((epochs, layers)),
  ...     "layer_update_ratio": np.tile([1e-10, 1e-7, 1e-4, 1e-2], (epochs, 1)),
  ...     "layer_grad_above_1": np.zeros((epochs, layers)),
  ...     "layer_nonfinite": np.zeros((epochs, layers)),
  ... }
  >>> d = nnjax.diagnose(history)
  >>> d.verdict, d.layers
  ('vanishing', (0, 1))
"""

from __future__ import annotations

import dataclasses
import warnings
from collections.abc import Mapping
from typing import Any

import numpy as np

__all__ = ["REMEDIES", "SATURATION_REMEDIES", "Diagnosis", "diagnose", "layer_name"]

REMEDIES = {
    "vanishing": (
        "ReLU (or leaky ReLU) in the hidden layers instead of sigmoid/tanh: MLP(..., activation='relu')",
        "He init for ReLU layers (Xavier for tanh/sigmoid) instead of a small fixed variance: init='he_normal'",
        "batch norm on the hidden layers: MLP(..., batch_norm=True)",
        "residual connections between hidden layers: MLP(..., residual=True)",
        "Adam, which rescales small gradients per parameter: optimizer=optax.adam(1e-3)",
    ),
    "exploding": (
        "gradient clipping: fit(..., clip_norm=1.0)",
        "a lower learning rate, or a decaying schedule: nnjax.optim.schedule('exponential', lr, decay_steps=...)",
        "Adam, whose steps stay near the learning rate: optimizer=optax.adam(1e-3)",
        "a smaller init variance: init='he_normal' (ReLU) or 'xavier_normal' (tanh) instead of a wide normal",
        "batch norm on the hidden layers: MLP(..., batch_norm=True)",
    ),
}
#: Put in front of the vanishing remedies when saturated sigmoid/tanh layers are a sign.
SATURATION_REMEDIES = (
    "Xavier/Glorot init for tanh/sigmoid (the default init=None picks it) instead of a wide normal: "
    "init='xavier_normal' keeps the pre-activations in the slope of the activation",
    "standardised inputs (nnjax.data.standardize): large input values saturate the first layer",
)
_REQUIRED = ("loss", "layer_grad_norm", "layer_weight_norm", "layer_update_ratio", "layer_grad_above_1",
             "layer_nonfinite")


@dataclasses.dataclass(frozen=True)
class Diagnosis:
    """What :func:`diagnose` found.

    Attributes:
      verdict: "healthy", "vanishing" or "exploding".
      signs: the signs behind the verdict, each a sentence with its numbers.
      layers: the dense layers concerned, as column indices of the history's
        per-layer arrays (0 = the first layer, ``n_layers - 1`` = the output layer).
      evidence: the scalar numbers the verdict was computed from (see :func:`diagnose`).
      per_layer: per-layer arrays of shape ``(n_layers,)``: "grad_norm" (median over
        epochs), "grad_ratio" (median of each layer's gradient norm over the output
        layer's), "update_ratio" (median), "above_1_share" (share of epochs with
        more than ``above_1_fraction`` of entries above 1), "above_1_last" (the
        fraction of entries above 1 in the last epoch), "weight_change" (last
        weight norm over the first), "nonfinite" (total count); and of shape ``(n_hidden,)``: "dead_units" (last epoch), "saturated_first" and
        "saturated_last" (fraction of saturated sigmoid/tanh activations in the first and
        the last epoch; NaN for other activations or a history without ``saturated_units``).
      remedies: what to try, most direct first (empty when healthy).
      notes: observations that did not make the verdict (dead ReLUs; single weak signs of a healthy run).
      thresholds: the thresholds used.
      epochs_used: the epochs that were run (after a stop, the rest are ignored).
    """

    verdict: str
    signs: tuple[str, ...]
    layers: tuple[int, ...]
    evidence: dict[str, float]
    per_layer: dict[str, np.ndarray]
    remedies: tuple[str, ...]
    notes: tuple[str, ...]
    thresholds: dict[str, float]
    epochs_used: tuple[int, ...]

    @property
    def n_layers(self) -> int:
        """The number of dense layers in the history."""
        return int(self.per_layer["grad_norm"].shape[0])

    @property
    def layer_names(self) -> tuple[str, ...]:
        """``layers`` as words: "layer 1" is the first dense layer, the last is "output layer"."""
        return tuple(layer_name(i, self.n_layers) for i in self.layers)

    def report(self) -> str:
        """A few lines for people: verdict, signs with numbers, layers, a per-layer table, remedies."""
        return render_report(self)

    def __str__(self) -> str:
        return self.report()


def _as_history(history: Any) -> dict[str, np.ndarray]:
    if hasattr(history, "history") and not isinstance(history, Mapping):
        history = history.history  # a FitResult
    if not isinstance(history, Mapping):
        raise TypeError(f"history: expected a dict of per-epoch arrays (result.history), got {type(history).__name__}")
    missing = [k for k in _REQUIRED if k not in history]
    if missing:
        raise ValueError(
            f"history: expected the per-layer keys of fit(..., diagnostics=True), got none of {missing}; "
            "train with diagnostics=True (the default)"
        )
    out = {k: np.asarray(v, np.float64) for k, v in history.items() if k != "stopped"}
    if "stopped" in history:
        out["stopped"] = np.asarray(history["stopped"], bool)
    loss = out["loss"]
    if loss.ndim != 1:
        raise ValueError(
            f"history: expected a single run's history (loss of shape (epochs,)), got loss of shape {loss.shape}; "
            "for a population pick one run, e.g. jax.tree.map(lambda a: a[i], history)"
        )
    for k in _REQUIRED[1:]:
        if out[k].ndim != 2 or out[k].shape[0] != loss.shape[0]:
            raise ValueError(f"history[{k!r}]: expected shape ({loss.shape[0]}, n_layers), got {out[k].shape}")
    return out


def _epochs_run(h: dict[str, np.ndarray]) -> np.ndarray:
    """Indices of the epochs that were run: not after a stop, and not all-NaN rows."""
    if "stopped" in h:
        return np.flatnonzero(~h["stopped"])
    skipped = h.get("skipped", np.zeros_like(h["loss"]))
    empty = np.isnan(h["loss"]) & np.all(np.isnan(h["layer_grad_norm"]), axis=1) & ~(skipped > 0)
    return np.flatnonzero(~empty)


def _nanmedian(a: np.ndarray, axis: int = 0) -> np.ndarray:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN columns give NaN, as wanted
        return np.nanmedian(a, axis=axis)


def _finite_first_last(a: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per column, the first and the last finite value (NaN where none)."""
    first, last = np.full(a.shape[1], np.nan), np.full(a.shape[1], np.nan)
    for j in range(a.shape[1]):
        finite = a[np.isfinite(a[:, j]), j]
        if finite.size:
            first[j], last[j] = finite[0], finite[-1]
    return first, last


def _per_layer(h: dict[str, np.ndarray], above_1_fraction: float) -> dict[str, np.ndarray]:
    grads = h["layer_grad_norm"]
    with np.errstate(divide="ignore", invalid="ignore"):
        ratios = np.where(grads[:, -1:] > 0, grads / grads[:, -1:], np.nan)
        first, last = _finite_first_last(h["layer_weight_norm"])
        change = np.where(first > 0, last / first, np.nan)
    above = h["layer_grad_above_1"]
    seen = np.isfinite(above)
    share = np.sum((above > above_1_fraction) & seen, axis=0) / np.maximum(np.sum(seen, axis=0), 1)
    above_last = _finite_first_last(above)[1]
    dead = h.get("dead_units")
    n_hidden = grads.shape[1] - 1
    saturated = h.get("saturated_units")
    if saturated is None or saturated.ndim != 2 or saturated.shape[1] != n_hidden:
        saturated = np.full((1, n_hidden), np.nan)
    sat_first, sat_last = _finite_first_last(saturated)
    return {
        "grad_norm": _nanmedian(grads),
        "grad_ratio": _nanmedian(ratios),
        "update_ratio": _nanmedian(h["layer_update_ratio"]),
        "above_1_share": share,
        "above_1_last": above_last,
        "weight_change": change,
        "nonfinite": np.nansum(h["layer_nonfinite"], axis=0),
        "dead_units": np.full(n_hidden, np.nan) if dead is None or dead.size == 0 else dead[-1],
        "saturated_first": sat_first,
        "saturated_last": sat_last,
    }


def _loss_evidence(loss: np.ndarray) -> dict[str, float]:
    finite = loss[np.isfinite(loss)]
    if finite.size == 0:
        return {"loss_first": np.nan, "loss_last": np.nan, "loss_improvement": np.nan, "max_loss_rise": np.nan}
    scale = max(abs(finite[0]), 1e-12)
    rises = np.diff(finite)
    return {
        "loss_first": float(finite[0]),
        "loss_last": float(finite[-1]),
        # relative improvement from the first epoch to the best one; NaN with a single epoch
        "loss_improvement": float((finite[0] - finite.min()) / scale) if finite.size > 1 else np.nan,
        # the largest rise from one epoch to the next, relative to the first epoch's loss
        "max_loss_rise": float(max(rises.max(), 0.0) / scale) if rises.size else 0.0,
    }


def diagnose(
    history: Mapping[str, Any],
    *,
    vanishing_ratio: float = 1e-3,
    exploding_ratio: float = 1e3,
    min_update_ratio: float = 1e-5,
    weight_shrink: float = 0.5,
    min_loss_improvement: float = 0.01,
    above_1_fraction: float = 0.01,
    consistency: float = 0.5,
    weight_growth: float = 10.0,
    loss_jump: float = 0.5,
    dead_fraction: float = 0.5,
    saturated_fraction: float = 0.5,
) -> Diagnosis:
    """Diagnoses vanishing or exploding gradients from the history of one training run.

    Args:
      history: ``result.history`` of ``nnjax.fit(..., diagnostics=True)`` (NumPy or
        jax arrays; a :class:`nnjax.FitResult` works too). Epochs after a stop
        (``history["stopped"]``, or rows that are all NaN) are ignored.
      vanishing_ratio: an early layer whose gradient norm (median over epochs) is
        below this fraction of the output layer's is vanishing (1e-3: three orders of magnitude).
      exploding_ratio: an early layer whose gradient norm (median over epochs) is above this
        multiple of the output layer's, with no early layer below ``vanishing_ratio``: the
        gradients grow toward the input, which is exploding even when sigmoid/tanh layers are
        saturated (a huge init: the few units in the slope pass back the huge weights).
      min_update_ratio: a step changing a weight matrix by less than this fraction of
        its norm (median ``layer_update_ratio``) barely changes it.
      weight_shrink: weight norms ending below this fraction of their first epoch's shrink towards 0.
      min_loss_improvement: a loss improving by less than this fraction of its first
        epoch's value (to its best epoch) has stalled.
      above_1_fraction: an epoch with more than this fraction of a layer's gradient
        entries above 1.0 in magnitude counts as "above 1".
      consistency: gradients are consistently above 1 when at least this share of
        the epochs counts as "above 1" for some layer, the last one included (large
        gradients that have died down by the end belong to a run that recovered).
      weight_growth: weight norms ending above this multiple of their first epoch's grow fast.
      loss_jump: a rise of the loss from one epoch to the next by more than this
        fraction of the first epoch's loss is a large swing.
      dead_fraction: hidden layers with more dead units than this (last epoch) get a note.
      saturated_fraction: a sigmoid/tanh hidden layer with more than this fraction of its
        activations saturated (``|tanh| > 0.99``, a sigmoid within 0.005 of 0 or 1; see
        :mod:`nnjax.diagnostics`) in the first epoch and in the last is saturated: a
        sign of vanishing gradients (unless the gradients grow toward the input, see
        ``exploding_ratio``; the saturation is then a note). Both epochs, because a
        well-trained net may end with many saturated units, but never starts with them from
        a suitable init.

    Returns:
      A :class:`Diagnosis`. Its ``evidence`` holds: "epochs_used", "nonfinite_entries",
      "skipped_steps", "nonfinite_loss_epochs", "min_grad_ratio" and "max_grad_ratio"
      (smallest and largest over the early layers), "min_update_ratio" (early layers), "max_above_1_share",
      "max_weight_growth", "min_weight_change" (early layers), "max_saturated"
      (over the hidden layers, the smaller of the first and the last epoch's saturated
      fraction; NaN without sigmoid/tanh layers), and the loss's
      "loss_first", "loss_last", "loss_improvement", "max_loss_rise".

    Raises:
      TypeError: ``history`` is not a dict.
      ValueError: the history lacks the diagnostics keys, belongs to several runs
        (a population), or has no epoch that was run.
    """
    thresholds = {
        "vanishing_ratio": vanishing_ratio, "exploding_ratio": exploding_ratio, "min_update_ratio": min_update_ratio,
        "weight_shrink": weight_shrink,
        "min_loss_improvement": min_loss_improvement, "above_1_fraction": above_1_fraction,
        "consistency": consistency, "weight_growth": weight_growth, "loss_jump": loss_jump,
        "dead_fraction": dead_fraction, "saturated_fraction": saturated_fraction,
    }
    for name, value in thresholds.items():
        if not (np.isfinite(value) and value > 0):
            raise ValueError(f"{name}: expected a positive number, got {value!r}")
    full = _as_history(history)
    rows = _epochs_run(full)
    if rows.size == 0:
        raise ValueError("history: expected at least one epoch that was run, got none (every epoch stopped)")
    h = {k: v[rows] for k, v in full.items()}
    per_layer = _per_layer(h, above_1_fraction)
    evidence = _evidence(h, per_layer, rows)
    verdict, signs, layers = _verdict(evidence, per_layer, thresholds)
    remedies = REMEDIES.get(verdict, ())
    if verdict in ("vanishing", "exploding") and _saturated(per_layer, thresholds).any():
        remedies = SATURATION_REMEDIES + remedies
    return Diagnosis(
        verdict=verdict,
        signs=tuple(signs),
        layers=tuple(int(i) for i in layers),
        evidence=evidence,
        per_layer=per_layer,
        remedies=remedies,
        notes=tuple(_notes(verdict, evidence, per_layer, thresholds)),
        thresholds=thresholds,
        epochs_used=tuple(int(r) for r in rows),
    )


def _evidence(h: dict[str, np.ndarray], per_layer: dict[str, np.ndarray], rows: np.ndarray) -> dict[str, float]:
    early = slice(0, max(per_layer["grad_norm"].shape[0] - 1, 0))

    def smallest(a: np.ndarray, reduce: Any = np.min) -> float:
        a = a[early]
        a = a[~np.isnan(a)]
        return float(reduce(a)) if a.size else np.nan

    growth = per_layer["weight_change"][~np.isnan(per_layer["weight_change"])]
    kept = np.fmin(per_layer["saturated_first"], per_layer["saturated_last"])
    kept = kept[~np.isnan(kept)]
    evidence = {
        "epochs_used": float(rows.size),
        "nonfinite_entries": float(np.nansum(h["layer_nonfinite"])),
        "skipped_steps": float(np.nansum(h["skipped"])) if "skipped" in h else 0.0,
        "nonfinite_loss_epochs": float(np.sum(~np.isfinite(h["loss"]))),
        "min_grad_ratio": smallest(per_layer["grad_ratio"]),
        "max_grad_ratio": smallest(per_layer["grad_ratio"], np.max),
        "min_update_ratio": smallest(per_layer["update_ratio"]),
        "max_above_1_share": float(per_layer["above_1_share"].max()),
        "max_weight_growth": float(growth.max()) if growth.size else np.nan,
        "min_weight_change": smallest(per_layer["weight_change"]),
        "max_saturated": float(kept.max()) if kept.size else np.nan,
    }
    evidence.update(_loss_evidence(h["loss"]))
    return evidence


def _saturated(per_layer: dict[str, np.ndarray], t: dict[str, float]) -> np.ndarray:
    """Per hidden layer: saturated beyond the threshold in the first epoch and in the last."""
    first, last = per_layer["saturated_first"], per_layer["saturated_last"]
    return (np.nan_to_num(first) > t["saturated_fraction"]) & (np.nan_to_num(last) > t["saturated_fraction"])


def _verdict(ev: dict[str, float], per_layer: dict[str, np.ndarray], t: dict[str, float]):
    """``(verdict, signs, layers)`` from the evidence; exploding is checked first (NaN trumps all)."""
    n_layers = per_layer["grad_norm"].shape[0]
    early = np.arange(n_layers - 1)
    signs: list[str] = []

    nonfinite = ev["nonfinite_entries"] > 0 or ev["skipped_steps"] > 0 or ev["nonfinite_loss_epochs"] > 0
    if nonfinite:
        signs.append(
            f"NaN/Inf: {ev['nonfinite_entries']:.0f} non-finite gradient entries, {ev['skipped_steps']:.0f} steps "
            f"skipped by the guard, {ev['nonfinite_loss_epochs']:.0f} epochs with a non-finite loss"
        )
    # without NaN, one sign alone is not enough: large gradients with a steadily falling loss and
    # steady weights are held in check (clipping, Adam, a small step), and weights may grow from a
    # small init while the loss falls smoothly
    above = (per_layer["above_1_share"] >= t["consistency"]) & (per_layer["above_1_last"] > t["above_1_fraction"])
    growing = per_layer["weight_change"] > t["weight_growth"]
    unstable = ev["max_loss_rise"] > t["loss_jump"] or ev["loss_improvement"] < t["min_loss_improvement"]
    corroborated = int(above.any()) + int(growing.any()) + int(unstable) >= 2
    # Saturated sigmoid/tanh layers explain large entries and a loss that barely falls without any
    # growth: huge weights times activations of +-1 give large dL/dW entries, while the flat tails
    # pass almost nothing back. With weights that do grow fast, the growth comes first.
    saturated = _saturated(per_layer, t)
    if saturated.any() and not growing.any():
        corroborated = False
    # Gradients growing toward the input are exploding whatever else is seen: saturated tanh units
    # with huge weights still pass back those weights through the few units in the slope, and the
    # product grows layer by layer (the table's "/output" column says so; the word must agree).
    ratios = per_layer["grad_ratio"]
    rising = np.zeros(n_layers, bool)
    if not (ratios[early] < t["vanishing_ratio"]).any():
        rising[early] = ratios[early] > t["exploding_ratio"]
    if rising.any():
        i = int(early[np.nanargmax(ratios[early])])
        signs.append(
            f"early layers' gradients orders of magnitude above the output layer's: {layer_name(i, n_layers)} at "
            f"{ratios[i]:.2e} x the output layer's (threshold {t['exploding_ratio']:.0e}): the backward signal grows "
            "toward the input"
        )
    if corroborated and above.any():
        signs.append(
            f"gradient entries consistently above 1.0: more than {t['above_1_fraction']:.0%} of entries in "
            f"{ev['max_above_1_share']:.0%} of the epochs, the last one included (threshold {t['consistency']:.0%})"
        )
    if corroborated and growing.any():
        signs.append(f"weights growing fast: norm x{ev['max_weight_growth']:.3g} (threshold x{t['weight_growth']:g})")
    if corroborated and unstable:
        signs.append(
            f"loss unstable: largest rise in one epoch {ev['max_loss_rise']:.0%} of its first value (threshold "
            f"{t['loss_jump']:.0%}), improvement {_fmt(100 * ev['loss_improvement'], '.1f')}%"
        )
    if signs:
        layers = np.flatnonzero((per_layer["nonfinite"] > 0) | rising | (above | growing if corroborated else False))
        if layers.size == 0:  # NaN loss without per-layer counts: the largest gradient
            layers = np.array([int(np.nanargmax(np.nan_to_num(per_layer["grad_norm"], nan=-1.0)))])
        return "exploding", signs, layers

    if saturated.any():
        signs.append(_saturation(per_layer, saturated, t))
    weak = per_layer["grad_ratio"][early] < t["vanishing_ratio"]
    if weak.any():
        signs.append(
            f"early layers' gradients orders of magnitude below the output layer's: {_worst(per_layer['grad_ratio'], early)}"
            f" (threshold {t['vanishing_ratio']:.0e})"
        )
    still = per_layer["update_ratio"][early] < t["min_update_ratio"]
    shrinking = per_layer["weight_change"][early] < t["weight_shrink"]
    stalled = ev["loss_improvement"] < t["min_loss_improvement"]
    if stalled and (still.any() or shrinking.any()):
        what = "barely change" if still.any() else "shrink towards 0"
        signs.append(
            f"loss stalled (improved {ev['loss_improvement']:.2%} from its first epoch, threshold "
            f"{t['min_loss_improvement']:.0%}) while early layers' weights {what} (update/weight "
            f"{ev['min_update_ratio']:.2e}, weight norm x{ev['min_weight_change']:.3g})"
        )
    if signs:
        mask = weak | (still & stalled) | (shrinking & stalled) | saturated
        return "vanishing", signs, early[mask]
    return "healthy", signs, np.zeros((0,), int)


def _saturation(per_layer: dict[str, np.ndarray], saturated: np.ndarray, t: dict[str, float]) -> str:
    """The sentence on saturated sigmoid/tanh layers (a sign of vanishing, a note beside exploding)."""
    n_layers = per_layer["grad_norm"].shape[0]
    worst = int(np.nanargmax(np.fmin(per_layer["saturated_first"], per_layer["saturated_last"])))
    return (
        f"saturated units: {layer_name(worst, n_layers)} has {per_layer['saturated_first'][worst]:.0%} of its "
        f"activations in the flat tails of sigmoid/tanh in the first epoch and "
        f"{per_layer['saturated_last'][worst]:.0%} in the last ({int(saturated.sum())} of "
        f"{saturated.shape[0]} hidden layers above {t['saturated_fraction']:.0%}), where the slope is below 2% of "
        "its peak: the init (or the inputs) too large for the activation"
    )


def _worst(values: np.ndarray, early: np.ndarray) -> str:
    i = int(early[np.nanargmin(values[early])])
    return f"{layer_name(i, values.shape[0])} at {values[i]:.2e} x the output layer's"


def _notes(verdict: str, ev: dict[str, float], per_layer: dict[str, np.ndarray], t: dict[str, float]) -> list[str]:
    """Observations that did not make the verdict: dead units, and single weak signs of a healthy run."""
    notes = []
    dead = per_layer["dead_units"]
    n_layers = per_layer["grad_norm"].shape[0]
    for i in np.flatnonzero(np.nan_to_num(dead) > t["dead_fraction"]):
        notes.append(
            f"{dead[i]:.0%} of the units of {layer_name(int(i), n_layers)} are dead (0 for every example): "
            "try leaky_relu, He init or a lower learning rate"
        )
    saturated = _saturated(per_layer, t)
    if verdict == "exploding" and saturated.any():
        notes.append(_saturation(per_layer, saturated, t) + "; the gradients that pass still grow toward the input")
    if verdict != "healthy":
        return notes
    consistent = per_layer["above_1_share"] >= t["consistency"]
    if (consistent & (per_layer["above_1_last"] > t["above_1_fraction"])).any():
        notes.append(f"gradient entries above 1.0 in {ev['max_above_1_share']:.0%} of the epochs, but the loss falls "
                     "steadily and the weights hold: large gradients kept in check (clipping, Adam, a small step)")
    elif consistent.any():
        notes.append(f"gradient entries above 1.0 in {ev['max_above_1_share']:.0%} of the epochs, but no longer "
                     "in the last one: the run recovered")
    if ev["max_weight_growth"] > t["weight_growth"]:
        notes.append(f"weights grew x{ev['max_weight_growth']:.3g} while the loss fell smoothly")
    if ev["max_loss_rise"] > t["loss_jump"]:
        notes.append(f"the loss rose by {ev['max_loss_rise']:.0%} of its first value in one epoch")
    if ev["loss_improvement"] < t["min_loss_improvement"]:
        notes.append(f"the loss improved only {ev['loss_improvement']:.2%}, with gradients reaching every layer")
    return notes


def layer_name(index: int, n_layers: int) -> str:
    """"layer 1" for the first dense layer, ..., "output layer" for the last (as in nnjax.plots)."""
    return "output layer" if index == n_layers - 1 else f"layer {index + 1}"


def _fmt(value: float, spec: str) -> str:
    return "-" if not np.isfinite(value) else format(value, spec)


def render_report(d: Diagnosis) -> str:
    """The text of :meth:`Diagnosis.report`."""
    n = d.n_layers
    head = {"healthy": "HEALTHY: no sign of vanishing or exploding gradients",
            "vanishing": "VANISHING gradients", "exploding": "EXPLODING gradients"}[d.verdict]
    lines = [f"nnjax.diagnose: {head} ({len(d.epochs_used)} epochs, {n} dense layers)"]
    if d.signs:
        lines.append("signs:")
        lines += [f"  - {s}" for s in d.signs]
    if d.layers:
        lines.append("layers concerned: " + ", ".join(d.layer_names))
    lines.append("per layer (median over epochs):")
    lines.append(f"  {'layer':<13}{'|grad|':>10}{'/output':>10}{'update/W':>10}{'|g|>1':>7}{'W x':>8}"
                 f"{'NaN/Inf':>9}{'dead':>6}{'sat':>6}")
    p = d.per_layer
    for i in range(n):
        dead = p["dead_units"][i] if i < p["dead_units"].shape[0] else np.nan
        sat = p["saturated_last"][i] if i < p["saturated_last"].shape[0] else np.nan
        lines.append(
            f"  {layer_name(i, n):<13}{_fmt(p['grad_norm'][i], '.2e'):>10}{_fmt(p['grad_ratio'][i], '.1e'):>10}"
            f"{_fmt(p['update_ratio'][i], '.1e'):>10}{_fmt(p['above_1_share'][i], '.0%'):>7}"
            f"{_fmt(p['weight_change'][i], '.3g'):>8}{_fmt(p['nonfinite'][i], '.0f'):>9}{_fmt(dead, '.0%'):>6}"
            f"{_fmt(sat, '.0%'):>6}"
        )
    ev = d.evidence
    if np.isfinite(ev["loss_first"]):
        lines.append(f"loss: {_fmt(ev['loss_first'], '.4g')} -> {_fmt(ev['loss_last'], '.4g')} "
                     f"(improved {_fmt(100 * ev['loss_improvement'], '.1f')}%, largest rise "
                     f"{_fmt(100 * ev['max_loss_rise'], '.1f')}% of the first value)")
    else:
        lines.append("loss: not finite in any epoch")
    if d.remedies:
        lines.append("remedies to try:")
        lines += [f"  - {r}" for r in d.remedies]
    lines += [f"note: {note}" for note in d.notes]
    return "\n".join(lines)
