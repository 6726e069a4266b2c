"""A saved run as a model: :func:`load` opens what ``nnjax train`` or :mod:`nnjax.checkpoint` wrote.

``nnjax.load(run_dir)`` reads a run directory written by ``nnjax train`` (``config.json``,
``preprocessing.json`` and ``checkpoints/``): it rebuilds the network from the run's arguments,
the preprocessing from the training split's statistics, and restores the newest checkpoint's
parameters and batch-norm state. The :class:`SavedModel` it returns predicts from *raw* features, as
``nnjax predict`` does (the command calls this module), so both give identical outputs.

``nnjax.load(ckpt_dir, net=net)`` reads a checkpoint directory written by
:func:`nnjax.checkpoint.save` of a :class:`nnjax.FitResult` (or of any tree with ``params`` and
``state``), for the topology ``net``; its inputs are used as given (no preprocessing), and
classes are indices.

A directory that is neither, or a damaged one (a file missing or unreadable, no complete
checkpoint, arrays that do not fit the network), raises one :class:`LoadError` naming what is
wrong.

Example:
  >>> import tempfile, jax, optax, nnjax
  >>> data = nnjax.data.load_dataset("xor")
  >>> net = nnjax.MLP((2, 8, 1), activation="tanh", output="sigmoid")
  >>> result = nnjax.fit(jax.random.key(0), net, (data.x, data.y), loss="binary_cross_entropy",
  ...                    optimizer=optax.adam(0.05), epochs=30, batch_size=32)
  >>> directory = tempfile.mkdtemp()
  >>> _ = nnjax.checkpoint.save(directory, result)
  >>> model = nnjax.load(directory, net=net)
  >>> model.predict(data.x[:4]).shape, model.predict_proba(data.x[:4]).shape
  ((4,), (4, 2))
"""

from __future__ import annotations

import pathlib
from typing import Any, Mapping, NamedTuple

import jax
import numpy as np

from nnjax._base import checks
from nnjax.io import checkpoint, runs
from nnjax.nn import losses, network

__all__ = ["LoadError", "SavedModel", "load", "network_from_args"]

_PRECISIONS = ("float32", "bfloat16")  # --precision: float32, or mixed with bfloat16 compute


class LoadError(ValueError):
    """A directory that :func:`load` cannot open as a model; ``argument`` names the culprit."""

    def __init__(self, message: str, argument: str = "path"):
        super().__init__(message)
        self.argument = argument


# ----------------------------------------------------------------------------------------------
# The topology a run's arguments describe


def _check(ok: bool, flag: str, expected: str, got: Any) -> None:
    if not ok:
        raise ValueError(f"{flag}: expected {expected}, got {got!r}")


def _widths(text: Any) -> tuple[int, ...]:
    parts = [p.strip() for p in str(text).split(",") if p.strip()]
    try:
        widths = tuple(int(p) for p in parts)
    except ValueError:
        raise ValueError(f"--hidden: expected comma-separated integers such as 128,64, got {text!r}") from None
    for w in widths:
        _check(w >= 1, "--hidden", "layer widths >= 1", w)
    return widths


def _per_layer(text: Any, flag: str, n_hidden: int, convert: Any) -> Any:
    parts = [p.strip() for p in str(text).split(",") if p.strip()]
    try:
        values = [convert(p) for p in parts]
    except ValueError:
        raise ValueError(f"{flag}: expected one value or one per hidden layer, got {text!r}") from None
    if len(values) == 1:
        return values[0]
    _check(len(values) == n_hidden, flag, f"one value or {n_hidden} (one per hidden layer)", text)
    return tuple(values)


def network_from_args(args: Any, prep: runs.Preprocessing) -> network.MLP:
    """The :class:`nnjax.MLP` that ``nnjax train``'s arguments describe, for data shaped by ``prep``.

    Args:
      args: the arguments (a namespace, or the ``"args"`` dict of a run's ``config.json``):
        ``hidden`` ("128,64"), ``activation``, ``dropout``, ``output``, ``init``, ``batch_norm``,
        ``residual``, ``precision`` (absent: float32), each as the command line takes it.
      prep: the run's preprocessing (input and output widths).

    Raises:
      ValueError: a value the command line would refuse, named by its flag.

    Example:
      >>> prep = runs.Preprocessing("classification", "softmax_cross_entropy", ("a", "b"), (0.0, 0.0),
      ...                           (1.0, 1.0), "y", ("no", "yes"))
      >>> network_from_args({"hidden": "8,4", "activation": "tanh", "dropout": "0", "output": "auto",
      ...                    "init": "auto", "batch_norm": False, "residual": False}, prep).sizes
      (2, 8, 4, 2)
    """
    get = args.get if isinstance(args, Mapping) else lambda k: getattr(args, k)
    hidden = _widths(get("hidden"))
    activation = _per_layer(get("activation"), "--activation", len(hidden), str)
    dropout = _per_layer(get("dropout"), "--dropout", len(hidden), float)
    for rate in np.atleast_1d(dropout):
        _check(0 <= rate < 1, "--dropout", "rates in [0, 1) (the probability of dropping a unit)", float(rate))
    output = prep.record.output if get("output") == "auto" else get("output")
    prep.record.check_output(output, "--output")  # e.g. a sigmoid would squash what --loss mse fits
    precision = (args.get("precision") if isinstance(args, Mapping) else getattr(args, "precision", None)) or "float32"
    _check(precision in _PRECISIONS, "--precision", " or ".join(_PRECISIONS), precision)
    return network.MLP((prep.n_features, *hidden, prep.n_outputs), activation=activation, output=output,
                       init=None if get("init") == "auto" else get("init"), dropout=dropout,
                       batch_norm=bool(get("batch_norm")), residual=bool(get("residual")),
                       compute_dtype=None if precision == "float32" else precision)


# ----------------------------------------------------------------------------------------------
# The model


class SavedModel(NamedTuple):
    """A trained network with what it needs to read raw data: the result of :func:`load`.

    Attributes:
      net: the topology.
      params, state: the parameters and batch-norm statistics (one member's, for a population).
      preprocessing: the run's :class:`nnjax.runs.Preprocessing`; None for a bare checkpoint.
      config: the run's ``config.json`` (empty for a bare checkpoint).
      member: the population member loaded (0 for a single run).
      path: the directory it came from.
    """

    net: network.MLP
    params: Any
    state: Any
    preprocessing: runs.Preprocessing | None
    config: dict
    member: int
    path: pathlib.Path

    @property
    def loss(self) -> losses.Loss:
        """The loss record that reads the outputs: the run's loss, or for a bare checkpoint the loss
        of its output activation (:func:`nnjax.losses.for_output`)."""
        return losses.for_output(self.net.output) if self.preprocessing is None else self.preprocessing.record

    @property
    def classes(self) -> tuple[str, ...]:
        """The class names, in the order of the probabilities' columns (empty for regression).

        A bare checkpoint's classes are the targets its loss takes: ``0..k-1`` for a softmax,
        ``0, 1`` for a sigmoid, ``-1, 1`` for a sign output.
        """
        if self.preprocessing is not None:
            return self.preprocessing.class_names
        if not self.loss.classification:
            return ()
        return tuple(str(int(v)) for v in self.loss.encode(np.arange(max(2, self.net.sizes[-1]))))

    def logits(self, x_raw: Any) -> np.ndarray:
        """The network's pre-activation outputs ``(n, n_outputs)`` for raw (unstandardised) features."""
        x = np.asarray(x_raw, np.float32) if self.preprocessing is None else self.preprocessing.inputs(x_raw)
        return np.asarray(network.apply_compiled(self.params, x, self.net, state=self.state))

    def predict(self, x_raw: Any) -> np.ndarray:
        """Predictions for raw features: class names (a run), a checkpoint's :attr:`classes` as
        integers (indices; -1/+1 for a sign output), or values."""
        logits = self.logits(x_raw)
        prep, loss = self.preprocessing, self.loss
        if prep is not None:
            decoded = prep.decode(logits)
            return np.asarray(prep.class_names)[decoded] if prep.classification else decoded
        decoded = loss.decode(logits)
        return np.asarray(self.classes, np.int64)[decoded] if loss.classification else decoded

    def predict_proba(self, x_raw: Any) -> np.ndarray:
        """Class probabilities ``(n, n_classes)``, columns in the order of :attr:`classes`.

        Raises:
          ValueError: for a model without probabilities (regression, a hinge or sign output).
        """
        logits = self.logits(x_raw)
        proba = self.loss.probabilities(logits)
        if proba is None:
            raise ValueError(f"predict_proba: expected a softmax or sigmoid classifier, got a model with output "
                             f"{self.net.output!r}" + (f" and loss {self.preprocessing.loss!r}"
                                                       if self.preprocessing else ""))
        return proba

    def class_indices(self, labels: Any) -> np.ndarray:
        """Class indices of labels given as class names, numbers equal to them, or indices.

        Integers count as indices when the class names are not numbers (a dataset's names).
        """
        labels = np.asarray(labels)
        names = self.classes
        numeric = all(_is_number(n) for n in names)
        if self.preprocessing is None or (np.issubdtype(labels.dtype, np.integer) and not numeric):
            return np.asarray(labels, np.int64)
        return self.preprocessing.class_indices(labels.tolist(), "y").astype(np.int64)

    def evaluate(self, x_raw: Any, y: Any) -> dict[str, Any]:
        """Scores the model on raw features and targets, as ``nnjax evaluate`` does.

        Args:
          x_raw: features as in the training data, shape ``(n, n_features)``.
          y: classification: labels as in the training data (the class names, or numbers equal
            to them), or class indices when the class names are not numbers; regression: values.

        Returns:
          :func:`nnjax.runs.score`'s dict: the report of :func:`nnjax.metrics.classification_report`
          or :func:`nnjax.metrics.regression_report` plus "loss" (the training loss).
        """
        prep = self.preprocessing
        if prep is None:
            raise ValueError("model: expected a model with preprocessing (a run directory), got one without; "
                             "use nnjax.metrics.classification_report or regression_report on its outputs")
        y = self.class_indices(y) if prep.classification else np.asarray(y, np.float64)
        return runs.score(prep, self.logits(x_raw), y)

    def summary(self) -> Any:
        """The network's :func:`nnjax.summary`."""
        from nnjax.report.summary import summary

        return summary(self.net)


def _is_number(text: str) -> bool:
    return checks.number(text) is not None


# ----------------------------------------------------------------------------------------------
# Reading a directory


def _restore(directory: pathlib.Path, net: network.MLP, step: int | None) -> tuple[dict, int]:
    """The saved params and state, and the number of members (1 unless a population was saved)."""
    like = jax.eval_shape(lambda: {"params": network.init(jax.random.key(0), net), "state": network.init_state(net)})
    problem = None
    try:
        tree = checkpoint.restore(directory, like=like, step=step)
    except checkpoint.CheckpointError:  # damaged, not foreign: its own message names the step and why
        raise
    except (ValueError, KeyError, TypeError, FileNotFoundError) as err:
        problem = str(err)
    else:
        # restore matches leaves by path only; the shapes must be the network's, or a population's
        shapes = [(tuple(np.shape(a)), tuple(b.shape)) for a, b in zip(jax.tree.leaves(tree), jax.tree.leaves(like))]
        if all(got == want for got, want in shapes):
            return tree, 1
        members = {got[0] for got, want in shapes if len(got) == len(want) + 1 and got[1:] == want}
        bad = [f"{got} for {want}" for got, want in shapes if got != want and got[1:] != want]
        if not bad and len(members) == 1:
            return tree, members.pop()
        problem = f"arrays of shapes {', '.join(bad[:4])}" if bad else "arrays with different member counts"
    raise LoadError(f"{directory}: expected a checkpoint of the network {net.sizes}'s params and state, "
                    f"got one that does not fit ({problem})")


def _pick(tree: dict, member: int | None, members: int, where: str) -> tuple[dict, int]:
    if members == 1:
        if member not in (None, 0):
            raise LoadError(f"member: expected 0 or None for a single run, got {member}", "member")
        return tree, 0
    if member is None or not 0 <= int(member) < members:
        raise LoadError(f"member: expected a member in [0, {members}) of the population in {where}, got {member}",
                        "member")
    return jax.tree.map(lambda a: a[int(member)], tree), int(member)


def _read_json(path: pathlib.Path, what: str) -> Any:
    try:
        return runs.read_json(path, what)
    except (FileNotFoundError, ValueError) as err:
        raise LoadError(str(err)) from None


def _best_member(run_dir: pathlib.Path, seeds: int) -> int:
    """The best member of a population as its ``metrics.json`` records it (written when training ends)."""
    scores = run_dir / runs.METRICS
    if not scores.is_file():
        raise LoadError(f"member: expected a member in [0, {seeds}) of the population in {run_dir}, got none, and "
                        f"{runs.METRICS} that names the best one is missing (the run did not finish)", "member")
    best = _read_json(scores, f"{run_dir}: {runs.METRICS}").get("best_member")
    if isinstance(best, bool) or not isinstance(best, int) or not 0 <= best < seeds:
        raise LoadError(f"{run_dir}: {runs.METRICS}: expected best_member in [0, {seeds}) (the run has {seeds} "
                        f"members), got {best!r}")
    return best


def _load_run(run_dir: pathlib.Path, member: int | None, step: int | None) -> SavedModel:
    config = _read_json(run_dir / runs.CONFIG, f"{run_dir}: {runs.CONFIG}")
    saved = _read_json(run_dir / runs.PREPROCESSING, f"{run_dir}: {runs.PREPROCESSING}")
    try:
        prep = runs.Preprocessing(**{k: tuple(v) if isinstance(v, list) else v for k, v in saved.items()})
        net = network_from_args(config["args"], prep)
        seeds = int(config["args"].get("seeds", 1))
    except (TypeError, KeyError, ValueError, AttributeError) as err:
        raise LoadError(f"{run_dir}: expected config.json and preprocessing.json as nnjax train writes them, "
                        f"got files that do not describe a model ({type(err).__name__}: {err})") from None
    try:
        prep.check(f"{run_dir}: {runs.PREPROCESSING}")
    except ValueError as err:
        raise LoadError(str(err)) from None
    if checkpoint.latest_step(run_dir / runs.CHECKPOINTS) is None:
        raise LoadError(f"{run_dir}: expected a complete checkpoint in {runs.CHECKPOINTS}/, got none "
                        "(was the run stopped before its first checkpoint?)")
    if member is None and seeds > 1:
        member = _best_member(run_dir, seeds)
    tree, members = _restore(run_dir / runs.CHECKPOINTS, net, step)
    if members != seeds:
        raise LoadError(f"{run_dir}: expected a checkpoint of {seeds} member(s) as config.json says, got {members}")
    tree, member = _pick(tree, member, seeds, str(run_dir))
    return SavedModel(net, tree["params"], tree["state"], prep, config, member, run_dir)


def load(path: Any, *, net: network.MLP | None = None, member: int | None = None, step: int | None = None) -> SavedModel:
    """Opens a run directory of ``nnjax train``, or a checkpoint directory for the topology ``net``.

    Args:
      path: a run directory (``config.json``, ``preprocessing.json``, ``checkpoints/``), or a
        directory written by :func:`nnjax.checkpoint.save` of a result with ``params`` and ``state``.
      net: the topology of a bare checkpoint; refused for a run directory, which records its own.
      member: the population member to load; default the run's best (``metrics.json``), and
        required for a population saved in a bare checkpoint.
      step: the checkpoint step (epoch) to read; default the newest complete one.

    Returns:
      A :class:`SavedModel`.

    Raises:
      LoadError: (a ValueError) a missing, foreign or damaged directory, or a bad ``member``.
    """
    path = pathlib.Path(path)
    if not path.is_dir():
        raise LoadError(f"path: expected a run or checkpoint directory, got {str(path)!r} "
                        f"({'a file' if path.exists() else 'no such directory'})")
    if (path / runs.CONFIG).exists() or (path / runs.PREPROCESSING).exists():
        if net is not None:
            raise LoadError(f"net: expected None for a run directory (its config.json describes the network), "
                            f"got {net!r}", "net")
        return _load_run(path, member, step)
    if checkpoint.latest_step(path) is None:
        raise LoadError(f"{path}: expected a run directory written by nnjax train (config.json, preprocessing.json, "
                        f"checkpoints/) or a checkpoint directory of nnjax.checkpoint.save, got neither "
                        f"(contents: {sorted(p.name for p in path.iterdir())[:8]})")
    if net is None:
        raise LoadError(f"net: expected the nnjax.MLP of the checkpoint in {path} (a bare checkpoint does not "
                        "record its topology), got None", "net")
    if not isinstance(net, network.MLP):  # a Model of your own, a text model: their apply is not an MLP's
        raise LoadError(f"net: expected an nnjax.MLP (nnjax.load opens MLP checkpoints), got {type(net).__name__}; "
                        f"restore a model of your own with nnjax.checkpoint.restore({str(path)!r}, like=result)",
                        "net")
    tree, members = _restore(path, net, step)
    tree, member = _pick(tree, member, members, str(path))
    return SavedModel(net, tree["params"], tree["state"], None, {}, member, path)
