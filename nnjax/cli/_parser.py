"""The command line's flags and parser (standard library only: ``--help`` never imports JAX).

``nnjax train`` with no flag trains a 64-128-64-10 ReLU network with Adam on the bundled digits
data (features standardised on the training split) and writes a run directory (see
:mod:`nnjax.runs`). Every flag is listed with its default by ``nnjax train --help``. Bad input
(a missing file, a non-numeric column, an impossible size...) gives one line on stderr that says
what to fix, exit code 2, and nothing on disk.

"""

from __future__ import annotations

import argparse
import pathlib
from typing import Sequence

from nnjax._base import optimizers
from nnjax.io import runs
from nnjax.cli._errors import UsageError

__all__ = ["RUN_CONTROL", "TRAIN_FLAGS", "build_parser", "parse_args"]

#: Flags that steer a run but not its result (left out of config.json).
RUN_CONTROL = {"command", "out", "resume", "from_intact", "config", "quiet", "json", "no_plots", "checkpoint_every",
               "progress_every", "tensorboard"}
_CHANGEABLE_ON_RESUME = {"epochs", "from_intact", "quiet", "json", "no_plots", "checkpoint_every", "progress_every",
                         "tensorboard"}


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # one line instead of usage + message
        raise UsageError(f"{message} (see '{self.prog} --help')")


class _HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Shows each flag's default, except where there is none to show (None, on/off switches)."""

    def _get_help_string(self, action):
        if action.default is None or isinstance(action.default, bool):
            return action.help
        return super()._get_help_string(action)


def _fmt() -> type:
    return _HelpFormatter


_SWITCH = {"action": "store_true"}


def _rate(text: str) -> float | str:
    """``--lr``: a number, or "auto" (the learning-rate range test chooses)."""
    if text == "auto":
        return text
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number or 'auto', got {text!r}") from None

#: nnjax train's flags by group: (flag, argparse options, help).
TRAIN_FLAGS = {
    "data": [
        ("--dataset", {"default": "digits", "metavar": "NAME"}, "a bundled dataset (digits, iris, wine, "
         "breast_cancer, diabetes, xor, moons, spirals, blobs, regression); ignored with --data"),
        ("--data", {"metavar": "FILE"}, "a .csv file (with a header row) or .npz file of your own"),
        ("--target", {"metavar": "COLUMN"}, "the target column of a CSV (required with a CSV), or the target array "
         "of an NPZ (y if not given)"),
        ("--x-key", {"default": "x", "metavar": "KEY"}, "the feature array of an .npz file"),
        ("--task", {"default": "auto", "choices": ("auto", "classification", "regression")},
         "auto: text or whole-number targets are classes, anything else regression"),
        ("--test-fraction", {"type": float, "default": 0.2, "metavar": "F"}, "share of rows held out for the test"),
        ("--validation-fraction", {"type": float, "default": 0.1, "metavar": "F"},
         "share of rows scored after every epoch (0: none)"),
        ("--no-standardize", _SWITCH, "feed the raw features instead of standardising them with the training "
         "split's mean and standard deviation"),
    ],
    "model": [
        ("--hidden", {"default": "128,64", "metavar": "WIDTHS"}, "hidden layer widths, comma separated ('' for none)"),
        ("--activation", {"default": "relu", "metavar": "NAME"}, "hidden activation, or one per layer comma separated"),
        ("--init", {"default": "auto", "metavar": "NAME"}, "weight init (he_normal, xavier_normal, lecun_normal, "
         "normal, ...); auto: He for ReLU-like activations, Xavier otherwise"),
        ("--output", {"default": "auto", "metavar": "NAME"}, "output activation (softmax, sigmoid, identity, sign, "
         "step); auto: from the loss"),
        ("--dropout", {"default": "0", "metavar": "RATE"},
         "probability of dropping a hidden unit, one or one per layer"),
        ("--batch-norm", _SWITCH, "batch-normalise the hidden layers"),
        ("--residual", _SWITCH, "skip connections between hidden layers"),
        ("--precision", {"default": "float32", "choices": ("float32", "bfloat16")},
         "bfloat16: mixed precision (float32 parameters and optimiser state, bfloat16 matmuls and activations, "
         "float32 losses)"),
    ],
    "training": [
        ("--loss", {"default": "auto", "metavar": "NAME"}, "mse, softmax_cross_entropy, binary_cross_entropy, hinge; "
         "auto: softmax cross-entropy for classes, mse for regression"),
        ("--optimizer", {"default": "adam", "metavar": "NAME"}, ", ".join(optimizers.OPTIMIZERS)),
        ("--lr", {"type": _rate, "default": 1e-3, "metavar": "RATE"},
         "learning rate (peak rate of a schedule); auto: the range test's suggestion (nnjax.lr_find), printed"),
        ("--momentum", {"type": float, "default": 0.9, "metavar": "M"}, "for momentum and nesterov"),
        ("--schedule", {"default": "constant", "metavar": "NAME"}, ", ".join(optimizers.SCHEDULES)),
        ("--decay-rate", {"type": float, "default": 0.5, "metavar": "F"}, "factor of the exponential/step schedules"),
        ("--decay-epochs", {"type": int, "default": 10, "metavar": "N"}, "epochs per decay of exponential/step"),
        ("--warmup-epochs", {"type": int, "default": 0, "metavar": "N"}, "linear warm-up of warmup_cosine"),
        ("--epochs", {"type": int, "default": 40, "metavar": "N"}, "passes over the training data"),
        ("--batch-size", {"type": int, "default": 32, "metavar": "N"}, "examples per minibatch"),
        ("--drop-last", _SWITCH, "drop the short last batch instead of padding and masking it"),
        ("--l1", {"type": float, "default": 0.0, "metavar": "S"}, "L1 penalty strength on the weights"),
        ("--l2", {"type": float, "default": 0.0, "metavar": "S"}, "L2 penalty strength on the weights"),
        ("--clip-norm", {"type": float, "metavar": "NORM"}, "clip the gradients' global norm"),
        ("--clip-value", {"type": float, "metavar": "V"}, "clip each gradient entry to +-V"),
        ("--early-stopping", {"type": int, "default": 0, "metavar": "PATIENCE"},
         "stop after PATIENCE epochs without improvement and keep the best epoch (0: off)"),
        ("--min-delta", {"type": float, "default": 0.0, "metavar": "D"}, "smallest change early stopping counts"),
        ("--seeds", {"type": int, "default": 1, "metavar": "N"}, "train a population of N models at once"),
        ("--seed", {"type": int, "default": 0, "metavar": "N"}, "seeds the split, the initial weights, the shuffles"),
    ],
    "run": [
        ("--out", {"metavar": "DIR"}, "the run directory (default: runs/<data>-<date>-<time>)"),
        ("--resume", {"metavar": "DIR"}, "continue the run in DIR from its newest checkpoint"),
        ("--from-intact", _SWITCH, "with --resume: if the newest checkpoint is damaged, continue from the newest "
         "intact one (the damaged newer ones are moved to DIR/damaged_checkpoints)"),
        ("--config", {"metavar": "FILE"}, "take the settings of a run's config.json (flags given override them)"),
        ("--checkpoint-every", {"type": int, "default": 10, "metavar": "K"},
         "checkpoint every K epochs and at the end (0: only at the end)"),
        ("--progress-every", {"type": int, "default": 0, "metavar": "E"},
         "epochs per compiled chunk between progress updates (0: about 20 updates)"),
        ("--no-plots", _SWITCH, "skip the PNG plots"),
        ("--tensorboard", {"nargs": "?", "const": "", "metavar": "DIR"}, "write TensorBoard event files after every "
         "chunk (to DIR, default RUN_DIR/tensorboard); needs pip install 'nnjax[tensorboard]'"),
        ("--quiet", _SWITCH, "no progress bar and no summary"),
        ("--json", _SWITCH, "print one JSON summary line (and nothing else) on stdout"),
    ],
}


def _add_train_flags(p: argparse.ArgumentParser) -> None:
    for group, flags in TRAIN_FLAGS.items():
        adder = p.add_argument_group(group)
        for flag, options, text in flags:
            adder.add_argument(flag, help=text, **options)


def _add_model_flags(p: argparse.ArgumentParser, what: str) -> None:
    p.add_argument("run_dir", metavar="DIR", help="a run directory written by nnjax train")
    p.add_argument("--data", metavar="FILE", help=f"a .csv or .npz file to {what} (features named as in training)")
    p.add_argument("--dataset", metavar="NAME", help=f"a bundled dataset to {what}")
    p.add_argument("--target", metavar="COLUMN", help="the target column/array (default: as in training)")
    p.add_argument("--x-key", default="x", metavar="KEY", help="the feature array of an .npz file")
    p.add_argument("--member", type=int, metavar="I", default=None, help="population member to use (default: the best)")


def build_parser() -> argparse.ArgumentParser:
    """The ``nnjax`` argument parser (sub-commands train, evaluate, predict)."""
    parser = _Parser(prog="nnjax", description="Train and use feed-forward networks compiled with JAX.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    train = sub.add_parser("train", help="train a network and write a run directory", formatter_class=_fmt(),
                           description="Train an MLP; with no flag, on the bundled digits data.")
    _add_train_flags(train)
    evaluate = sub.add_parser("evaluate", help="score a saved model on data", formatter_class=_fmt(),
                              description="Score a run's model (default: on the run's own test split).")
    _add_model_flags(evaluate, "score")
    evaluate.add_argument("--json", action="store_true", help="print the metrics as one JSON line")
    predict = sub.add_parser("predict", help="predict with a saved model (CSV out)", formatter_class=_fmt(),
                             description="Write predictions of a run's model as CSV.")
    _add_model_flags(predict, "predict")
    predict.add_argument("--out", metavar="FILE", help="the CSV to write (default: stdout)")
    _add_tune_flags(sub.add_parser("tune", help="search hyper-parameters and save the best run", formatter_class=_fmt(),
                                   description="Search ranges of --lr, --l2 and --dropout (successive halving by "
                                               "default); writes a leaderboard and the best member as a run."))
    return parser


_RANGES = {"lr": "1e-4:1e-1", "l2": "0", "dropout": "0"}


def _add_tune_flags(p: argparse.ArgumentParser) -> None:
    _add_train_flags(p)
    for action in p._actions:  # noqa: SLF001 - the range flags take text: 1e-4:1e-1 or 0,1e-4,1e-3
        if action.dest in _RANGES:
            action.type, action.default = str, _RANGES[action.dest]
            action.help = f"{action.help}: a range low:high (log when both > 0 and 10x apart) or choices a,b,c"
        if action.dest == "epochs":
            action.default, action.help = 27, "epochs of the longest-trained members (the last rung)"
        if action.dest == "resume":
            action.help = "continue the search in DIR after its last finished rung"
    search = p.add_argument_group("search")
    search.add_argument("--method", default="halving", metavar="NAME", help="halving, grid, random or pbt")
    search.add_argument("--members", type=int, default=27, metavar="N", help="settings to start (times --seeds)")
    search.add_argument("--min-epochs", type=int, default=1, metavar="N", help="epochs of the first rung (halving)")
    search.add_argument("--eta", type=int, default=3, metavar="N", help="keep the best 1/eta of the members per rung")
    search.add_argument("--generation-epochs", type=int, default=3, metavar="N",
                        help="epochs between exploit/explore steps (pbt; a divisor of --epochs)")
    search.add_argument("--quantile", type=float, default=0.25, metavar="Q",
                        help="the bottom fraction that copies the top fraction each generation (pbt)")


def _train_subparser(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    for action in parser._subparsers._group_actions:  # noqa: SLF001 - argparse keeps them here
        return action.choices["train"]
    raise AssertionError("no train sub-command")


def _check_saved(train: argparse.ArgumentParser, saved: dict, what: str) -> None:
    """A config's values by their flags' own types: an integer flag takes an integer, a number flag
    a number, a switch true or false, a named choice one of its names, the rest text; null only
    where the flag's default is none. (argparse would take them as they are.)"""
    for action in train._actions:  # noqa: SLF001
        if action.dest not in saved or not action.option_strings:
            continue
        value, flag = saved[action.dest], action.option_strings[0]
        if isinstance(action, argparse._StoreTrueAction):  # noqa: SLF001
            ok, expected = isinstance(value, bool), "true or false"
        elif value is None:
            ok, expected = action.default is None, "a value (not null)"
        elif action.type in (int, float):
            expected = "an integer" if action.type is int else "a number"
            ok = not isinstance(value, bool) and _converts(action.type, value)
        elif action.type is _rate:  # a number, or "auto"
            expected = "a number or 'auto'"
            ok = value == "auto" or (not isinstance(value, bool) and _converts(float, value))
        else:
            ok, expected = isinstance(value, str), "text"
        if ok and action.choices is not None and value not in action.choices:
            ok, expected = False, f"one of {', '.join(map(str, action.choices))}"
        if not ok:
            raise UsageError(f"{what}: {flag}: expected {expected}, got {value!r}")


def _converts(kind: type, value: object) -> bool:
    if isinstance(value, float) and kind is int:
        return False  # 2.7 epochs is no count; 2.0 is not one either in a file that nnjax wrote
    try:
        kind(value)
    except (TypeError, ValueError, OverflowError):
        return False
    return True


def _apply_saved_args(parser, argv, saved: dict, first: argparse.Namespace, *, resume: bool) -> argparse.Namespace:
    """Re-parses ``argv`` with a saved config's arguments as defaults (explicit flags override)."""
    train = _train_subparser(parser)
    known = {a.dest for a in train._actions} - {"help"}  # noqa: SLF001
    unknown = sorted(set(saved) - known)
    if unknown:
        raise UsageError(f"config: unknown settings {unknown}; expected a config.json written by nnjax train")
    _check_saved(train, saved, "--resume" if resume else "--config")
    defaults = {a.dest: a.default for a in train._actions if a.dest in known}  # noqa: SLF001
    if resume:
        changed = sorted(k for k in known - _CHANGEABLE_ON_RESUME - RUN_CONTROL
                         if getattr(first, k) != defaults[k] and getattr(first, k) != saved.get(k, defaults[k]))
        if changed:
            flags = ", ".join(f"--{k.replace('_', '-')} {getattr(first, k)} (the run has {saved.get(k, defaults[k])})"
                              for k in changed)
            raise UsageError(f"--resume: expected only --epochs and run flags, got {flags}; a resumed run keeps its "
                             "network, loss, features and optimizer (start a new run with --config DIR/config.json "
                             "to change them)")
    train.set_defaults(**saved)
    try:
        return parser.parse_args(argv)
    finally:
        train.set_defaults(**defaults)


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        raise UsageError("expected a command: train, evaluate or predict (see 'nnjax --help')")
    if args.command == "tune":
        return args
    if args.command == "train" and args.from_intact and not args.resume:
        raise UsageError("--from-intact: expected it with --resume DIR, got it without")
    if args.command == "train" and (args.resume or args.config):
        if args.resume and (args.config or args.out):
            other = "--config" if args.config else "--out"
            raise UsageError(f"--resume and {other}: expected --resume alone (it continues the run in place), got both")
        path = pathlib.Path(args.resume) / runs.CONFIG if args.resume else pathlib.Path(args.config)
        what = "--resume" if args.resume else "--config"
        if args.resume and not pathlib.Path(args.resume).is_dir():
            raise UsageError(f"--resume: no run directory {args.resume!r}")
        saved = runs.read_json(path, what)
        saved = saved.get("args", saved) if isinstance(saved, dict) else None
        if not isinstance(saved, dict):
            raise UsageError(f"{what}: expected a config.json written by nnjax train in {path}")
        args = _apply_saved_args(parser, argv, saved, args, resume=bool(args.resume))
    return args
