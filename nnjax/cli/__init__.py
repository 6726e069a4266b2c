"""The ``nnjax`` command: ``nnjax train``, ``nnjax evaluate`` and ``nnjax predict``.

``nnjax train`` with no flag trains a 64-128-64-10 ReLU network with Adam on the bundled digits
data (features standardised on the training split) and writes a run directory (see
:mod:`nnjax.runs`). Every flag is listed with its default by ``nnjax train --help``. Bad input
(a missing file, a non-numeric column, an impossible size...) gives one line on stderr that says
what to fix, exit code 2, and nothing on disk.

Floors inside the package (an import only goes down): ``_errors`` (the one error type),
``_parser`` (flags; standard library only, so ``--help`` answers without importing JAX),
``_setup`` (checks and data), ``_train`` and ``_model`` (the commands), and this file's
:func:`main`, which imports a command's module only once the arguments have parsed.

Example:
  >>> from nnjax.cli import main
  >>> main(["train", "--dataset", "xor", "--epochs", "2", "--hidden", "4", "--batch-size", "0"])
  2
"""

from __future__ import annotations

import gc
import sys
from typing import Sequence

from nnjax.cli._errors import UsageError
from nnjax.cli._parser import RUN_CONTROL, TRAIN_FLAGS, build_parser, parse_args

__all__ = ["RUN_CONTROL", "TRAIN_FLAGS", "UsageError", "build_parser", "main", "parse_args", "run"]


def main(argv: Sequence[str] | None = None) -> int:
    """Runs the ``nnjax`` command line; returns the exit code (0 ok, 2 bad input, 130 interrupted)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        args = parse_args(argv)
        if args.command == "train":
            from nnjax.cli._checks import check_args

            check_args(args)  # bad numbers are answered before JAX is imported
        from nnjax._base import cache

        cache.enable_default()  # before any set-up: the small programs of data splits and scoring are cached too
        if args.command == "train":
            from nnjax.cli import _train

            return _train.train(args)
        if args.command == "tune":
            from nnjax.cli import _tune

            return _tune.tune(args)
        from nnjax.cli import _model

        return _model.evaluate(args) if args.command == "evaluate" else _model.predict(args)
    except SystemExit as exit_:  # --help, --version
        return int(exit_.code or 0) if not isinstance(exit_.code, str) else 2
    except (UsageError, ValueError, TypeError, OSError, KeyError) as err:
        message = str(err).strip() or type(err).__name__
        if isinstance(err, KeyError):
            message = f"missing entry {message}"
        print(f"nnjax: error: {' '.join(message.split())}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as err:  # one line: what a command adds (how to continue), or just that
        print(f"nnjax: {err.args[0] if err.args else 'interrupted'}", file=sys.stderr)
        return 130


def run() -> None:
    """The ``nnjax`` console script (and ``python -m nnjax``): :func:`main`, then exit with its code.

    Before exiting it freezes the garbage collector's view of the heap (``gc.freeze``), so the
    interpreter's teardown does not scan the objects JAX, SciPy and matplotlib left behind: that
    scan took 0.5 s of a 5 s ``nnjax train`` on a 2-core machine. atexit handlers still run and
    files are closed as usual; only the process's final collection is skipped.
    """
    code = main()
    gc.freeze()
    sys.exit(code)
