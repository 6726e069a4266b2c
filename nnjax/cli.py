"""The ``nnjax`` command: ``nnjax train``, ``nnjax evaluate`` and ``nnjax predict``.

``nnjax train`` with no flag trains a 64-128-64-10 ReLU network with Adam on the bundled digits
data (features standardised on the training split) and writes a run directory (see
:mod:`nnjax.runs`). Every flag is listed with its default by ``nnjax train --help``. Bad input
(a missing file, a non-numeric column, an impossible size...) gives one line on stderr that says
what to fix, exit code 2, and nothing on disk.

Example:
  >>> from nnjax.cli import main
  >>> main(["train", "--dataset", "xor", "--epochs", "2", "--hidden", "4", "--batch-size", "0"])
  2
"""

from __future__ import annotations

import argparse
import pathlib
import sys
from typing import Sequence

from nnjax import runs

__all__ = ["RUN_CONTROL", "UsageError", "build_parser", "main"]

#: Flags that steer a run but not its result (left out of config.json).
RUN_CONTROL = {"command", "out", "resume", "config", "quiet", "json", "no_plots", "checkpoint_every", "progress_every"}
_CHANGEABLE_ON_RESUME = {"epochs", "quiet", "json", "no_plots", "checkpoint_every", "progress_every"}


class UsageError(Exception):
    """Bad command-line input: reported as one line on stderr with exit code 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # one line instead of usage + message
        raise UsageError(f"{message} (see '{self.prog} --help')")


def _fmt() -> type:
    return argparse.ArgumentDefaultsHelpFormatter


def _add_train_flags(p: argparse.ArgumentParser) -> None:
    data = p.add_argument_group("data")
    data.add_argument("--dataset", default="digits", help="a bundled dataset (digits, iris, wine, breast_cancer, "
                      "diabetes, xor, moons, spirals, blobs, regression); ignored with --data")
    data.add_argument("--data", metavar="FILE", help="a .csv file (with a header row) or .npz file of your own")
    data.add_argument("--target", metavar="COLUMN", help="the target column of a CSV (required) or array of an NPZ "
                      "(default y)")
    data.add_argument("--x-key", default="x", help="the feature array of an .npz file")
    data.add_argument("--task", choices=("auto", "classification", "regression"), default="auto",
                      help="auto: text or whole-number targets are classes, anything else regression")
    data.add_argument("--test-fraction", type=float, default=0.2, help="share of rows held out for the final test")
    data.add_argument("--validation-fraction", type=float, default=0.1,
                      help="share of rows scored after every epoch (0: none)")
    data.add_argument("--no-standardize", action="store_true",
                      help="feed raw features (default: standardise with the training split's statistics)")
    model = p.add_argument_group("model")
    model.add_argument("--hidden", default="128,64", help="hidden layer widths, comma separated ('' for none)")
    model.add_argument("--activation", default="relu", help="hidden activation, or one per layer comma separated")
    model.add_argument("--init", default="auto", help="weight init (he_normal, xavier_normal, lecun_normal, normal, "
                       "...); auto: He for ReLU-like activations, Xavier otherwise")
    model.add_argument("--output", default="auto", help="output activation (softmax, sigmoid, identity, sign, "
                       "step); auto: from the loss")
    model.add_argument("--dropout", default="0", help="probability of dropping a hidden unit, one or one per layer")
    model.add_argument("--batch-norm", action="store_true", help="batch-normalise hidden layers")
    model.add_argument("--residual", action="store_true", help="skip connections between hidden layers")
    fit = p.add_argument_group("training")
    fit.add_argument("--loss", default="auto", help="mse, softmax_cross_entropy, binary_cross_entropy, hinge; auto: "
                     "softmax cross-entropy for classes, mse for regression")
    fit.add_argument("--optimizer", default="adam", help="sgd, momentum, nesterov, adam, adamw, rmsprop, adagrad")
    fit.add_argument("--lr", type=float, default=1e-3, help="learning rate (peak rate of a schedule)")
    fit.add_argument("--momentum", type=float, default=0.9, help="for momentum and nesterov")
    fit.add_argument("--schedule", default="constant", help="constant, exponential, cosine, step, warmup_cosine")
    fit.add_argument("--decay-rate", type=float, default=0.5, help="factor of the exponential and step schedules")
    fit.add_argument("--decay-epochs", type=int, default=10, help="epochs per decay of exponential/step schedules")
    fit.add_argument("--warmup-epochs", type=int, default=0, help="linear warm-up of warmup_cosine")
    fit.add_argument("--epochs", type=int, default=40, help="passes over the training data")
    fit.add_argument("--batch-size", type=int, default=32, help="examples per minibatch")
    fit.add_argument("--drop-last", action="store_true", help="drop the short last batch (default: pad and mask)")
    fit.add_argument("--l1", type=float, default=0.0, help="L1 penalty strength on weights")
    fit.add_argument("--l2", type=float, default=0.0, help="L2 penalty strength on weights")
    fit.add_argument("--clip-norm", type=float, default=None, help="clip the gradients' global norm")
    fit.add_argument("--clip-value", type=float, default=None, help="clip each gradient entry to +-value")
    fit.add_argument("--early-stopping", type=int, default=0, metavar="PATIENCE",
                     help="stop after PATIENCE epochs without improvement and keep the best epoch (0: off)")
    fit.add_argument("--min-delta", type=float, default=0.0, help="smallest improvement early stopping counts")
    fit.add_argument("--seeds", type=int, default=1, help="train a population of this many models at once")
    fit.add_argument("--seed", type=int, default=0, help="seeds the split, the initial weights and the shuffles")
    run = p.add_argument_group("run")
    run.add_argument("--out", metavar="DIR", help="run directory (default runs/<dataset>-<time>)")
    run.add_argument("--resume", metavar="DIR", help="continue the run in DIR from its last checkpoint")
    run.add_argument("--config", metavar="FILE", help="take the settings of a run's config.json (flags override)")
    run.add_argument("--checkpoint-every", type=int, default=10, metavar="K", help="checkpoint every K epochs "
                     "(and at the end; 0: only at the end)")
    run.add_argument("--progress-every", type=int, default=0, metavar="E",
                     help="epochs per compiled chunk between progress updates (0: about 20 updates)")
    run.add_argument("--no-plots", action="store_true", help="skip the PNG plots")
    run.add_argument("--quiet", action="store_true", help="no progress bar and no summary")
    run.add_argument("--json", action="store_true", help="print one JSON summary line (and nothing else) on stdout")


def _add_model_flags(p: argparse.ArgumentParser, what: str) -> None:
    p.add_argument("run_dir", metavar="DIR", help="a run directory written by nnjax train")
    p.add_argument("--data", metavar="FILE", help=f"a .csv or .npz file to {what} (features named as in training)")
    p.add_argument("--dataset", help=f"a bundled dataset to {what}")
    p.add_argument("--target", metavar="COLUMN", help="the target column/array (default: as in training)")
    p.add_argument("--x-key", default="x", help="the feature array of an .npz file")
    p.add_argument("--member", type=int, default=None, help="population member to use (default: the best)")


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
    return parser


def _train_subparser(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    for action in parser._subparsers._group_actions:  # noqa: SLF001 - argparse keeps them here
        return action.choices["train"]
    raise AssertionError("no train sub-command")


def _apply_saved_args(parser, argv, saved: dict, first: argparse.Namespace, *, resume: bool) -> argparse.Namespace:
    """Re-parses ``argv`` with a saved config's arguments as defaults (explicit flags override)."""
    train = _train_subparser(parser)
    known = {a.dest for a in train._actions} - {"help"}  # noqa: SLF001
    unknown = sorted(set(saved) - known)
    if unknown:
        raise UsageError(f"config: unknown settings {unknown}; expected a config.json written by nnjax train")
    defaults = {a.dest: a.default for a in train._actions if a.dest in known}  # noqa: SLF001
    if resume:
        changed = sorted(k for k in known - _CHANGEABLE_ON_RESUME - RUN_CONTROL
                         if getattr(first, k) != defaults[k] and getattr(first, k) != saved.get(k, defaults[k]))
        if changed:
            flags = ", ".join("--" + k.replace("_", "-") for k in changed)
            raise UsageError(f"--resume: expected only --epochs and run flags, got {flags}; a resumed run keeps its "
                             "settings (start a new run with --config DIR/config.json to change them)")
    train.set_defaults(**saved)
    try:
        return parser.parse_args(argv)
    finally:
        train.set_defaults(**defaults)


def _parse(argv: Sequence[str]) -> argparse.Namespace:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        raise UsageError("expected a command: train, evaluate or predict (see 'nnjax --help')")
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


def main(argv: Sequence[str] | None = None) -> int:
    """Runs the ``nnjax`` command line; returns the exit code (0 ok, 2 bad input, 130 interrupted)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        args = _parse(argv)
        if args.command == "train":
            from nnjax import _cli_train

            return _cli_train.train(args)
        from nnjax import _cli_model

        return _cli_model.evaluate(args) if args.command == "evaluate" else _cli_model.predict(args)
    except SystemExit as exit_:  # --help, --version
        return int(exit_.code or 0) if not isinstance(exit_.code, str) else 2
    except (UsageError, ValueError, TypeError, OSError, KeyError) as err:
        message = str(err).strip() or type(err).__name__
        if isinstance(err, KeyError):
            message = f"missing entry {message}"
        print(f"nnjax: error: {' '.join(message.split())}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("nnjax: interrupted", file=sys.stderr)
        return 130
