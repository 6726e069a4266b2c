"""``nnjax train``'s first step: check every argument, load and split the data, build the model.

Nothing here writes to disk, so bad input fails before a run directory exists.
"""

from __future__ import annotations

import argparse
import os
import pathlib
import re
import sys
from typing import Any, NamedTuple

import numpy as np

from nnjax import data as data_lib
from nnjax._base import optimizers
from nnjax.train import optim
from nnjax.train.options import EarlyStopping, Options
from nnjax.nn import losses
from nnjax.nn.network import MLP
from nnjax.io import runs, saved
from nnjax.cli._checks import check_args, check as _check
from nnjax.cli._errors import UsageError

__all__ = ["Setup", "build_net", "load_splits", "make_setup"]


class Setup(NamedTuple):
    """Everything a run needs, validated and loaded before anything is written to disk."""

    args: argparse.Namespace
    source: dict
    prep: runs.Preprocessing
    splits: dict  # name -> (network inputs, raw targets); "train" always, "validation"/"test" if asked
    net: MLP
    options: Options  # the run's settings, validation data included

    @property
    def data(self) -> tuple[np.ndarray, np.ndarray]:
        """The training split as the network trains on it: ``(inputs, encoded targets)``."""
        x, y = self.splits["train"]
        return x, self.prep.targets(y)


def _load_data(args: argparse.Namespace) -> tuple[Any, dict]:
    task = None if args.task == "auto" else args.task
    if not args.data:
        return data_lib.load_dataset(args.dataset, seed=args.seed), {"kind": "dataset", "name": args.dataset}
    path = pathlib.Path(args.data)
    if path.is_dir():
        raise UsageError(f"--data: expected a file, got a directory {args.data!r}")
    if not path.is_file():
        raise UsageError(f"--data: no such file {args.data!r}")
    suffix = path.suffix.lower()
    if suffix == ".csv":
        if not args.target:
            raise UsageError("--target: expected the name of the CSV's target column, got none")
        dataset = data_lib.load_csv(path, args.target, task=task)
    elif suffix == ".npz":
        dataset = data_lib.load_npz(path, args.x_key, args.target or "y", task=task)
    else:
        raise UsageError(f"--data: expected a .csv or .npz file, got {path.name!r}")
    return dataset, {"kind": "file", "path": str(path.resolve()), "sha256": runs.file_digest(path)}


def _resolve_loss(args: argparse.Namespace, dataset: Any) -> str:
    if args.task != "auto" and dataset.task != args.task:
        raise UsageError(f"--task: the targets cannot be used for {args.task}, they look like {dataset.task}")
    loss = losses.resolve(losses.DEFAULTS[dataset.task] if args.loss == "auto" else args.loss)
    classes = dataset.task == "classification"
    if loss.classification != classes:
        fix = "; use --task regression for numeric targets" if classes else ""
        names = [n for n, entry in losses.REGISTRY.items() if entry.classification == classes]
        raise UsageError(f"--loss: expected {' or '.join(names)} for {dataset.task} targets, got {args.loss!r}{fix}")
    try:
        loss.n_outputs(dataset.n_classes if classes else 1)  # e.g. the hinge loss takes 2 classes only
    except ValueError as err:
        raise UsageError(f"--{err}") from None
    return loss.name


def build_net(args: Any, prep: runs.Preprocessing) -> MLP:
    """The topology a run's arguments describe (``args``: a namespace or a config's dict)."""
    try:
        net = saved.network_from_args(args, prep)
    except ValueError as err:
        raise UsageError(str(err)) from None
    _check_memory(net, args)
    return net


def _memory_bytes() -> int | None:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return None


def _check_memory(net: MLP, args: Any) -> None:
    """Refuses widths whose parameters, gradients and optimizer state (four float32 copies) alone
    exceed the machine's memory: they would end in an allocation traceback after compiling."""
    sizes = net.sizes
    weights = sum(a * b + b for a, b in zip(sizes[:-1], sizes[1:]))
    need, have = 16 * weights, _memory_bytes()
    if have is not None and need > have:
        hidden = args.get("hidden") if isinstance(args, dict) else getattr(args, "hidden", None)
        raise UsageError(f"--hidden: expected widths whose {weights:.3g} parameters fit in memory (with gradients "
                         f"and optimizer state about {need / 2**30:.3g} GiB; this machine has {have / 2**30:.3g} GiB), "
                         f"got {hidden!r}")


_SPLIT_FLAGS = {"train": "--test-fraction + --validation-fraction", "validation": "--validation-fraction",
                "test": "--test-fraction"}


def _split(args: argparse.Namespace, dataset: Any) -> dict:
    """The train/validation/test splits asked for; with both fractions 0, every row trains."""
    fractions = [1.0 - args.test_fraction - args.validation_fraction, args.validation_fraction, args.test_fraction]
    names = [n for n, f in zip(("train", "validation", "test"), fractions) if f > 0]
    if names == ["train"]:
        return {"train": (dataset.x, dataset.y)}  # nothing held out; fit reshuffles every epoch
    stratify = dataset.y if dataset.task == "classification" else None
    try:
        parts = data_lib.split(args.seed, dataset.x, dataset.y, fractions=[f for f in fractions if f > 0],
                                 stratify=stratify)
    except ValueError as err:
        empty = re.match(r"fractions: part (\d+) ", str(err))
        if empty is None:
            raise
        name = names[int(empty.group(1))]
        rows = f"{len(dataset.x)} rows"
        if stratify is not None:
            counts = np.unique(np.asarray(dataset.y).astype(str), return_counts=True)[1]
            rows += f" in {len(counts)} classes of {counts.min()} to {counts.max()} rows, split by class"
        fix = ("lower them" if name == "train" else
               f"raise {_SPLIT_FLAGS[name]}, set it to 0 for no {name} split")
        raise UsageError(f"{_SPLIT_FLAGS[name]}: the {name} split would have no rows ({rows}); {fix}, or use more "
                         "data") from None
    return dict(zip(names, parts))


def optimizer_factory(args: argparse.Namespace, steps_per_epoch: int) -> Any:
    """The flags' optimizer as a factory ``learning_rate -> optax transformation`` (``--lr`` is the
    peak rate of ``--schedule``): one per member of a search, the rate traced."""
    def build(lr: Any) -> Any:
        rate = optim.build_schedule(args.schedule, lr, steps=args.epochs * steps_per_epoch,
                                    decay_rate=args.decay_rate, decay_steps=args.decay_epochs * steps_per_epoch,
                                    warmup_steps=args.warmup_epochs * steps_per_epoch)
        return optim.build(args.optimizer, rate, momentum=args.momentum, clip_norm=args.clip_norm,
                           clip_value=args.clip_value)
    return build


def _optimizer(args: argparse.Namespace, steps_per_epoch: int) -> Any:
    # check_args checked every number under its flag's name; the table builds without checking again.
    # A new object per run is fine: fit compares optimizers by what they compute (optim.by_value).
    return optimizer_factory(args, steps_per_epoch)(args.lr)


def _factory(args: argparse.Namespace) -> Any:
    """The optimizer as a factory of its learning rate (what the range test sets)."""
    return lambda rate: optim.build(args.optimizer, rate, momentum=args.momentum, clip_norm=args.clip_norm,
                                    clip_value=args.clip_value)


def _auto_rate(args: argparse.Namespace, net: MLP, data: tuple, options: Options) -> float:
    """``--lr auto``: the learning-rate range test's suggestion for this run, said on stderr."""
    import jax

    from nnjax.train.search import lr_range

    found = lr_range.lr_find(jax.random.fold_in(jax.random.key(args.seed), 0x1F), net, data, options,
                             learning_rate=None, backoff=optimizers.OPTIMIZERS[args.optimizer].range_backoff)
    print(f"--lr auto: chose {found.suggestion:.3g} (band {found.band[0]:.3g}..{found.band[1]:.3g} over "
          f"{len(found.suggestions)} seeds; {found.rule})", file=sys.stderr)
    return float(f"{found.suggestion:.3g}")


def load_splits(args: argparse.Namespace) -> tuple[Any, dict, dict]:
    """Checks the arguments, loads the data and splits it: ``(dataset, source, {split: (x_raw, y)})``."""
    check_args(args)
    dataset, source = _load_data(args)
    if dataset.task == "classification" and dataset.n_classes < 2:
        flag = f"--target {args.target or 'y'}" if args.data else "--dataset"
        only = f"only class {dataset.target_names[0]!r}" if dataset.target_names else "no rows"
        raise UsageError(f"{flag}: expected at least 2 classes for classification, got {only}; there is nothing "
                         "to learn (for a numeric target, use --task regression)")
    return dataset, source, _split(args, dataset)


def make_setup(args: argparse.Namespace) -> Setup:
    """Checks the arguments, loads and splits the data, builds the network and optimiser."""
    dataset, source, parts = load_splits(args)
    loss = _resolve_loss(args, dataset)
    x_train, y_train = parts["train"]
    class_names = dataset.target_names if dataset.task == "classification" else ()
    prep = runs.Preprocessing.fit(x_train, y_train, task=dataset.task, loss=loss,
                                  feature_names=dataset.feature_names, class_names=class_names,
                                  target=args.target or (dataset.target_names[0] if dataset.task == "regression"
                                                         else "y"),
                                  standardize=not args.no_standardize)
    n_train = len(x_train)
    _check(args.batch_size <= n_train, "--batch-size", f"at most the {n_train} training examples", args.batch_size)
    net = build_net(args, prep)
    steps = n_train // args.batch_size if args.drop_last else -(-n_train // args.batch_size)
    splits = {name: (prep.inputs(x), y) for name, (x, y) in parts.items()}
    validation = None
    if "validation" in splits:
        xv, yv = splits["validation"]
        validation = (xv, prep.targets(yv))
    # --early-stopping 0 is the command line's "off" (the API's is None)
    stopping = EarlyStopping(patience=args.early_stopping, min_delta=args.min_delta) if args.early_stopping else None
    options = Options(loss=loss, optimizer=_factory(args), epochs=args.epochs, batch_size=args.batch_size,
                      l1=args.l1, l2=args.l2, drop_last=args.drop_last, early_stopping=stopping, validation=validation)
    if args.lr == "auto":  # the range test chooses; the run (and its saved config) gets a number
        args.lr = _auto_rate(args, net, (splits["train"][0], prep.targets(splits["train"][1])), options)
    options = options.replace(optimizer=_optimizer(args, steps))
    source.update(n=len(dataset.x), task=dataset.task, n_features=prep.n_features)
    return Setup(args, source, prep, splits, net, options)
