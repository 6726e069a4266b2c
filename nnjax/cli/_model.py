"""``nnjax evaluate`` and ``nnjax predict``: a run's saved model on new data.

The model is opened by :func:`nnjax.load`, so these commands and the Python API give the same
outputs (an unreadable run becomes a usage error naming the problem). New data must have the
features the model was trained on: a CSV by column name (in any order; the target column may be
there too, nothing else), an NPZ or bundled dataset by feature count.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import pathlib
import sys
from typing import Any

import numpy as np

from nnjax import data as data_lib
from nnjax._base import files
from nnjax.data.files import read_csv
from nnjax.io import checkpoint, runs, saved
from nnjax.report import metrics
from nnjax.cli._setup import load_splits
from nnjax.cli._errors import UsageError
from nnjax.io.saved import SavedModel

__all__ = ["SavedModel", "check_out_file", "evaluate", "load_model", "predict"]


def load_model(run_dir: Any, member: int | None = None) -> SavedModel:
    """Reads a run's model (member ``member`` of a population; default the best one)."""
    try:
        return saved.load(run_dir, member=member)
    except saved.LoadError as err:  # the library names the argument; the user knows the flag
        raise UsageError(f"--{err}" if err.argument == "member" else f"DIR: {err}") from None
    except checkpoint.CheckpointError as err:  # never use a damaged model; say which one and why
        raise UsageError(f"DIR: {err}") from None


def _read_csv(path: pathlib.Path, prep: runs.Preprocessing, target: str, need_target: bool):
    table = read_csv(path)  # the one CSV reader: refuses a file for the reasons nnjax train does
    header = table.header
    missing = [f for f in prep.feature_names if f not in header]
    if missing:
        raise UsageError(f"--data: {path.name} lacks the feature columns {missing} the model was trained on")
    extra = [h for h in header if h not in prep.feature_names and h != target]
    if extra:
        raise UsageError(f"--data: {path.name} has columns {extra} the model was not trained on; expected the "
                         f"{prep.n_features} training features" + (f" and the target {target!r}" if target else ""))
    if need_target and target not in header:
        raise UsageError(f"--target: expected a column {target!r} in {path.name}, got columns {header}")
    x = np.stack([table.numbers(f) for f in prep.feature_names], axis=1)
    y = None
    if target in header:
        y = prep.class_indices(table.cells(target), f"column {target!r}") if prep.classification else \
            table.numbers(target)
    return x, y


def _targets(prep: runs.Preprocessing, values: Any, where: str) -> np.ndarray:
    if prep.classification:
        return prep.class_indices(list(values), where)
    return data_lib.check_targets(np.asarray(values, np.float64), len(values), where).astype(np.float64)


def _read_npz(path: pathlib.Path, prep: runs.Preprocessing, x_key: str, target: str, need_target: bool):
    try:
        archive = np.load(path, allow_pickle=False)
    except (ValueError, OSError) as err:
        raise UsageError(f"--data: expected an .npz archive, could not read {path.name} ({err})") from None
    with archive:
        if x_key not in archive.files or (need_target and target not in archive.files):
            raise UsageError(f"--data: expected arrays {x_key!r} and {target!r} in {path.name}, got {archive.files}")
        x = data_lib.check_features(archive[x_key], name=f"{path.name}[{x_key!r}]").astype(np.float64)
        _check_width(x, prep, path.name)
        y = _targets(prep, archive[target].tolist(), f"{path.name}[{target!r}]") if target in archive.files else None
    return x, y


def _read_data(args: argparse.Namespace, model: SavedModel, need_target: bool) -> tuple[np.ndarray, Any, str]:
    """Raw features, targets (None if absent) and a name for the data."""
    prep, target = model.preprocessing, args.target or model.preprocessing.target
    if args.data and args.dataset:
        raise UsageError("--data and --dataset: expected one of them, got both")
    if args.data:
        path = pathlib.Path(args.data)
        if not path.is_file():
            raise UsageError(f"--data: no such file {args.data!r}")
        if path.suffix.lower() == ".npz":
            x, y = _read_npz(path, prep, args.x_key, target, need_target)
        else:
            x, y = _read_csv(path, prep, target, need_target)
        name = path.name
    elif args.dataset:
        data = data_lib.load_dataset(args.dataset, seed=int(model.config["args"].get("seed", 0)))
        x = data.x
        _check_width(x, prep, args.dataset)
        y = _targets(prep, [data.target_names[c] for c in data.y] if prep.classification else data.y,
                     f"dataset {args.dataset!r}")
        name = args.dataset
    else:
        return _test_split(args, model)
    return x, y, name


def _check_width(x: np.ndarray, prep: runs.Preprocessing, name: str) -> None:
    if x.shape[1] != prep.n_features:
        raise UsageError(f"features: the model was trained on {prep.n_features} features, got {x.shape[1]} in {name}")


def _test_split(args: argparse.Namespace, model: SavedModel) -> tuple[np.ndarray, Any, str]:
    from nnjax.cli._parser import parse_args

    # The same data and split as training (seeded); the model's saved preprocessing does the rest.
    train_args = parse_args(["train", "--config", str(pathlib.Path(args.run_dir) / runs.CONFIG)])
    _, _, splits = load_splits(train_args)
    if "test" not in splits:
        raise UsageError("the run has no test split (--test-fraction 0); pass --data FILE or --dataset NAME")
    raw, y = splits["test"]
    return np.asarray(raw, np.float32), y, "test split"


def evaluate(args: argparse.Namespace) -> int:
    """The ``nnjax evaluate`` command."""
    model = load_model(args.run_dir, args.member)
    x, y, name = _read_data(args, model, need_target=True)
    if y is None:
        raise UsageError(f"--target: expected targets in {name} to score against, got none")
    scores = runs.score(model.preprocessing, model.logits(x), y)
    if args.json:
        print(json.dumps(runs.plain({"run_dir": str(args.run_dir), "data": name, "n": len(x), **scores})))
    else:
        print(f"{name} ({len(x)} rows): {metrics.format_report(scores)}")
    return 0


def check_out_file(out: Any) -> pathlib.Path | None:
    """``predict --out``: a regular file (or a new one, or a link to one) outside every run
    directory; checked before anything is read or computed. None: write to stdout."""
    if out is None:
        return None
    if not str(out).strip():
        raise UsageError(f"--out: expected a file path, got {out!r}")
    run = runs.run_containing(out)
    if run is not None:
        raise UsageError(f"--out: expected a file outside run directories, got {str(out)!r} inside the run {str(run)!r}")
    try:
        files.check_writable_file(out)
    except files.WriteError as err:
        raise UsageError(f"--out: {err}") from None
    return pathlib.Path(out)


def predict(args: argparse.Namespace) -> int:
    """The ``nnjax predict`` command: one CSV row per input row."""
    out = check_out_file(args.out)
    model = load_model(args.run_dir, args.member)
    x, _, _ = _read_data(args, model, need_target=False)
    prep = model.preprocessing
    predicted = model.predict(x)
    header, columns = [], []
    if prep.classification:
        header.append("prediction")
        columns.append([str(c) for c in predicted])
        try:
            probabilities = model.predict_proba(x)
        except ValueError:  # a hinge model has scores, not probabilities
            probabilities = None
        if probabilities is not None:
            header += [f"probability_{c}" for c in prep.class_names]
            # repr: the shortest text that reads back as the same float64 (predict_proba's values exactly)
            columns += [[repr(float(p)) for p in col] for col in probabilities.T]
    else:
        values = np.asarray(predicted).reshape(len(x), -1)
        header += [prep.target] if values.shape[1] == 1 else [f"{prep.target}_{j}" for j in range(values.shape[1])]
        columns += [[repr(float(v)) for v in col] for col in values.T]  # exactly predict's values, as above
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(zip(*columns))
    if out is not None:
        try:
            runs.write_text(out, buffer.getvalue())
        except files.WriteError as err:  # disk full, read-only, no permission: the file named, not its temporary
            raise UsageError(f"--out: {err}") from None
    else:
        sys.stdout.write(buffer.getvalue())
    return 0
