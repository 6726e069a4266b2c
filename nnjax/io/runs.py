"""Run directories: what ``nnjax train`` writes, and how a saved model reads new data.

A run directory holds::

    config.json          the resolved arguments, data source and versions (``nnjax train --config``)
    preprocessing.json   feature names, standardisation, classes: how raw data becomes inputs
    checkpoints/         orbax checkpoints of the FitResult, every K epochs and at the end (each with
                         the history of its own epochs, those since the checkpoint before)
    history/             those epochs of each checkpoint, chained by SHA-256 (nnjax.io.run_history)
    history.csv/.json    per-epoch metrics (per-layer statistics as one column per layer)
    metrics.json         final train/validation/test metrics
    diagnosis.json/.txt  nnjax.diagnose's verdict on the gradient history
    loss.png, gradient_norms.png, confusion_matrix.png

Every file is written atomically (a temporary file renamed into place), so a reader never sees
half a file.

Example:
  >>> import numpy as np
  >>> from nnjax import runs
  >>> prep = runs.Preprocessing.fit(np.array([[0.0, 1.0], [2.0, 3.0]], np.float32), np.array([0, 1]),
  ...                               task="classification", loss="softmax_cross_entropy",
  ...                               feature_names=("a", "b"), class_names=("no", "yes"), target="label")
  >>> prep.inputs(np.array([[1.0, 2.0]], np.float32)).tolist()
  [[0.0, 0.0]]
  >>> prep.decode(np.array([[0.2, 1.5]])).tolist(), prep.n_outputs
  ([1], 2)
"""

from __future__ import annotations

import csv
import functools
import io
import json
import math
import os
import pathlib
from typing import Any, Callable, NamedTuple, Sequence

import numpy as np

from nnjax._base import files
from nnjax._base.files import atomic_write

__all__ = [
    "CHECKPOINTS",
    "CONFIG",
    "PREPROCESSING",
    "Preprocessing",
    "file_digest",
    "history_table",
    "is_run",
    "plain",
    "read_json",
    "run_containing",
    "score",
    "score_splits",
    "write_history",
    "write_json",
    "write_text",
]

CONFIG = "config.json"
PREPROCESSING = "preprocessing.json"
CHECKPOINTS = "checkpoints"
METRICS = "metrics.json"


# ----------------------------------------------------------------------------------------------
# Atomic files


def write_text(path: Any, text: str) -> pathlib.Path:
    """Writes ``text`` to ``path`` atomically (temporary file in the same folder, then rename)."""
    return atomic_write(path, lambda stream: stream.write(text))


def _jsonable(value: Any) -> Any:
    """Plain JSON values: arrays to (nested) lists, non-finite floats to None."""
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if hasattr(value, "shape") and hasattr(value, "dtype"):
        return _jsonable(np.asarray(value).tolist())
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return float(value) if math.isfinite(value) else None
    return value


def plain(value: Any) -> Any:
    """``value`` as plain JSON values: arrays to (nested) lists, NaN and infinities to None."""
    return _jsonable(value)


def is_run(directory: Any) -> bool:
    """Whether ``directory`` is a run directory: its ``config.json`` with ``preprocessing.json``
    or ``checkpoints/``, or the lock of a run being written."""
    directory = pathlib.Path(directory)
    if (directory / files.LOCK).exists():
        return True
    return (directory / CONFIG).is_file() and ((directory / PREPROCESSING).is_file()
                                               or (directory / CHECKPOINTS).is_dir())


def run_containing(path: Any, *, itself: bool = True) -> pathlib.Path | None:
    """The run directory ``path`` lies in (symbolic links followed), or None.

    With ``itself=False`` only the directories above ``path`` count (a run's own directory does not).
    """
    path = pathlib.Path(os.path.realpath(pathlib.Path(path).absolute()))
    for directory in ([path] if itself else []) + list(path.parents):
        if directory.is_dir() and is_run(directory):
            return directory
    return None


def file_digest(path: Any) -> str:
    """The SHA-256 of a file's bytes (config.json records it to notice a changed data file)."""
    return files.file_digest(path)


def write_json(path: Any, value: Any) -> pathlib.Path:
    """Writes ``value`` as indented JSON, atomically (NaN and infinities become null)."""
    return write_text(path, json.dumps(_jsonable(value), indent=2) + "\n")


def read_json(path: Any, what: str = "file") -> Any:
    """Reads a JSON file, with an error that says which file of a run is missing or broken."""
    path = pathlib.Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{what}: no such file {str(path)!r}")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise ValueError(f"{what}: {path} is not valid JSON ({err})") from None


# ----------------------------------------------------------------------------------------------
# From raw data to network inputs and targets, and back


class Preprocessing(NamedTuple):
    """How raw features and targets become network inputs and targets, and outputs predictions.

    Features are standardised with the training split's mean and standard deviation
    (:class:`nnjax.data.Standardizer`: one rule for constant columns). Classification targets are
    class indices (``class_names[k]`` is class ``k``); the loss record encodes them for the loss
    and decodes outputs back (:class:`nnjax.losses.Loss`: indices for softmax cross-entropy, 0/1
    for binary cross-entropy, -1/+1 for the hinge loss). Regression targets are standardised too
    (``y_mean``, ``y_scale``, by the same rule) and predictions are mapped back to their units.
    """

    task: str
    loss: str
    feature_names: tuple[str, ...]
    mean: tuple[float, ...]
    scale: tuple[float, ...]
    target: str
    class_names: tuple[str, ...] = ()
    y_mean: tuple[float, ...] = ()
    y_scale: tuple[float, ...] = ()

    @classmethod
    def fit(cls, x: np.ndarray, y: np.ndarray, *, task: str, loss: str, feature_names: Sequence[str],
            class_names: Sequence[str] = (), target: str = "y", standardize: bool = True) -> Preprocessing:
        """Statistics of the training split ``(x, y)`` (``y``: class indices or regression values).

        Raises:
          ValueError: a ``task`` the loss does not do (e.g. "regression" with a classification loss).
        """
        from nnjax.data.encoding import Standardizer  # here, not at the top: ``nnjax --help`` reads
        from nnjax.nn import losses  # this module, and neither floor loads without JAX

        record = losses.resolve(loss)
        if task != _TASKS[record.classification]:
            raise ValueError(f"task: expected {_TASKS[record.classification]!r} for the loss {record.name!r}, "
                             f"got {task!r}")
        x = np.asarray(x, np.float64)
        scaler = Standardizer.fit(x) if standardize else Standardizer(np.zeros(x.shape[1]), np.ones(x.shape[1]))
        y_mean, y_scale = (), ()
        if not record.classification:
            columns = Standardizer.fit(np.asarray(y, np.float64).reshape(len(y), -1), "y")
            y_mean, y_scale = _floats(columns.mean), _floats(columns.scale)
        return cls(task, record.name, tuple(str(f) for f in feature_names), _floats(scaler.mean),
                   _floats(scaler.scale), str(target), tuple(str(c) for c in class_names), y_mean, y_scale)

    def check(self, where: str = "preprocessing") -> Preprocessing:
        """Checks that the fields agree (one mean and scale per feature, ...), as a file read back must.

        Raises:
          ValueError: naming ``where`` and the fields that disagree.
        """
        n = len(self.feature_names)
        problems = [f"{field} has {len(getattr(self, field))} values for {n} features"
                    for field in ("mean", "scale") if len(getattr(self, field)) != n]
        if len(self.y_mean) != len(self.y_scale):
            problems.append(f"y_mean has {len(self.y_mean)} values and y_scale {len(self.y_scale)}")
        if any(not math.isfinite(v) for v in (*self.mean, *self.scale, *self.y_mean, *self.y_scale)):
            problems.append("a mean or scale is not a finite number")
        if any(v <= 0 for v in (*self.scale, *self.y_scale)):
            problems.append("a scale is not > 0")
        if problems:
            raise ValueError(f"{where}: expected one mean and scale per feature as nnjax train writes them, got "
                             f"{'; '.join(problems)}")
        return self

    @property
    def record(self) -> Any:
        """The loss's :class:`nnjax.losses.Loss`: what encodes targets and decodes outputs."""
        from nnjax.nn import losses  # see fit

        return losses.resolve(self.loss)

    @property
    def classification(self) -> bool:
        """Whether the targets are classes (the loss classifies)."""
        return self.record.classification

    @property
    def n_features(self) -> int:
        """The number of input features."""
        return len(self.feature_names)

    @property
    def n_outputs(self) -> int:
        """The network's output width for this loss and target."""
        return self.record.n_outputs(len(self.class_names) or len(self.y_mean))

    def inputs(self, x: np.ndarray) -> np.ndarray:
        """Standardised float32 features; the feature count must match the training data's.

        Raises:
          ValueError: another number of columns, or a value that is not finite or beyond float32's
            range (as training refuses it), naming its column.
        """
        x = np.asarray(x)
        if x.ndim != 2 or x.shape[1] != self.n_features:
            raise ValueError(
                f"features: expected {self.n_features} columns like the training data, got shape {x.shape}"
            )
        if x.dtype.kind == "f":
            bad = ~np.isfinite(x) | (np.abs(np.where(np.isfinite(x), x, 0.0)) > _FLOAT32_MAX)
            if bad.any():
                row, column = (int(i) for i in np.argwhere(bad)[0])
                raise ValueError(f"features: expected finite values within float32's range like the training data, "
                                 f"got {float(x[row, column])!r} in column {self.feature_names[column]!r} (row {row + 1})")
        from nnjax.data.encoding import Standardizer  # see fit

        return Standardizer(self.mean, self.scale).transform(x)

    def targets(self, y: np.ndarray) -> np.ndarray:
        """Targets as the loss expects them, from class indices or regression values."""
        if self.y_mean:
            shape = np.shape(y)
            y = ((np.asarray(y, np.float64).reshape(len(y), -1) - self.y_mean) / self.y_scale).reshape(shape)
        return self.record.encode(y)

    def decode(self, logits: Any) -> np.ndarray:
        """Predictions from the network's outputs: class indices, or values in original units."""
        decoded = self.record.decode(np.asarray(logits, np.float64))
        return decoded * np.asarray(self.y_scale) + np.asarray(self.y_mean) if self.y_mean else decoded

    def probabilities(self, logits: Any) -> np.ndarray | None:
        """Class probabilities ``(n, n_classes)`` for cross-entropy losses, else None."""
        return self.record.probabilities(logits)

    def class_indices(self, labels: Sequence[Any], where: str) -> np.ndarray:
        """Maps raw class labels (names or numbers) to the training classes' indices."""
        lookup = {name: i for i, name in enumerate(self.class_names)}
        numeric = {}
        for i, name in enumerate(self.class_names):
            try:
                numeric[float(name)] = i
            except ValueError:
                pass
        out = np.empty(len(labels), np.int32)
        for row, label in enumerate(labels):
            text = str(label).strip()
            if text in lookup:
                out[row] = lookup[text]
                continue
            try:
                out[row] = numeric[float(text)]
            except (ValueError, KeyError):
                raise ValueError(
                    f"{where}: row {row + 1} has class {text!r}, expected one of the training classes "
                    f"{list(self.class_names)}"
                ) from None
        return out


_TASKS = {True: "classification", False: "regression"}  # the task of a loss that classifies, or not
_FLOAT32_MAX = float(np.finfo(np.float32).max)


def _floats(values: np.ndarray) -> tuple[float, ...]:
    """Float32 values as Python floats (exact: a float32 survives the JSON round trip)."""
    return tuple(float(v) for v in np.asarray(values, np.float32))


@functools.lru_cache(maxsize=None)
def _per_example_loss(name: str) -> Callable:
    """The per-example loss ``name`` as one compiled program (op by op, each of its operations
    would compile a program of its own for every new number of rows)."""
    import jax

    from nnjax.nn import losses

    return jax.jit(losses.get(name))


def score(prep: Preprocessing, logits: Any, y: np.ndarray) -> dict[str, Any]:
    """Host-side metrics of outputs against raw targets (class indices or original units).

    Classification: :func:`nnjax.metrics.classification_report` of the decoded outputs (with
    the class probabilities of cross-entropy losses, or a hinge model's scores), plus "loss" (the
    mean per-example training loss). Regression, in the target's own units:
    :func:`nnjax.metrics.regression_report` ("mae", "mse", "rmse", "r2", averaged over outputs),
    plus "loss" (the mean squared error of the standardised targets, as trained).
    """
    return score_splits(prep, {"": (logits, y)})[""]


def score_splits(prep: Preprocessing, splits: dict[str, tuple[Any, np.ndarray]]) -> dict[str, dict[str, Any]]:
    """:func:`score` of each split's ``(logits, y)``; the losses of all rows come from one program call."""
    from nnjax.report import metrics  # jax and sklearn load here only; keeps ``import nnjax.runs`` light

    logits = {name: np.asarray(out, np.float32) for name, (out, _) in splits.items()}
    targets = np.concatenate([np.asarray(prep.targets(y)) for _, y in splits.values()])
    per_example = np.asarray(_per_example_loss(prep.loss)(np.concatenate(list(logits.values())), targets))
    cuts = np.cumsum([len(out) for out in logits.values()])[:-1]
    out = {}
    for (name, (_, y)), loss in zip(splits.items(), np.split(per_example, cuts)):
        if prep.classification:  # one output's logit is a decision value, for ROC AUC without probabilities
            scores = logits[name][:, 0] if logits[name].shape[1] == 1 else None
            report = metrics.classification_report(np.asarray(y), prep.decode(logits[name]),
                                                   proba=prep.probabilities(logits[name]), scores=scores,
                                                   n_classes=len(prep.class_names), class_names=prep.class_names)
        else:
            report = metrics.regression_report(np.asarray(y, np.float64).reshape(len(y), -1),
                                               prep.decode(logits[name]).reshape(len(y), -1))
        out[name] = {**report, "loss": float(np.mean(loss, dtype=np.float64))}
    return out


# ----------------------------------------------------------------------------------------------
# History as tables


def history_table(history: dict[str, Any], *, population: bool = False) -> tuple[list[str], list[list[Any]]]:
    """Per-epoch rows: ``epoch`` (from 1), scalars as columns, per-layer arrays as ``name_1..L``.

    With ``population=True`` (arrays ``(members, epochs, ...)``) there is one row per member and
    epoch, with a ``member`` column first.
    """
    arrays = {k: np.asarray(v) for k, v in history.items()}
    if not population:
        arrays = {k: v[None] for k, v in arrays.items()}
    members, epochs = next(iter(arrays.values())).shape[:2]
    columns, blocks = [], []
    for name in sorted(arrays):
        if name == "epoch":
            continue
        values = arrays[name].reshape(members, epochs, -1)
        if arrays[name].ndim == 2:
            columns.append(name)
        else:
            columns += [f"{name}_{i + 1}" for i in range(values.shape[-1])]
        blocks.append(values)
    table = np.concatenate([b.astype(np.float64) for b in blocks], axis=-1)
    header = (["member"] if population else []) + ["epoch"] + columns
    rows = []
    for m in range(members):
        for e in range(epochs):
            cells = [_cell(v) for v in table[m, e]]
            rows.append(([m] if population else []) + [e + 1] + cells)
    return header, rows


def _cell(value: float) -> Any:
    if not math.isfinite(value):
        return ""
    if value.is_integer() and abs(value) < 2**53:
        return int(value)
    return f"{value:.9g}"  # 9 significant digits: every float32 value reads back exactly


def write_history(run_dir: Any, history: dict[str, Any], *, population: bool = False) -> None:
    """Writes ``history.csv`` (see :func:`history_table`) and ``history.json`` (arrays as lists)."""
    header, rows = history_table(history, population=population)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    run_dir = pathlib.Path(run_dir)
    write_text(run_dir / "history.csv", buffer.getvalue())
    write_json(run_dir / "history.json", dict(history))
