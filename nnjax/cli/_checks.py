"""``nnjax train``'s number checks, on the standard library and NumPy only.

:func:`nnjax.cli.main` runs them before it imports the training command, so a bad flag is
answered without importing JAX (in a fraction of a second).
"""

from __future__ import annotations

import argparse
import os
from typing import Any

from nnjax._base import checks
from nnjax.cli._errors import UsageError

__all__ = ["FLAG_NAMES", "check", "check_args"]


def check(ok: bool, flag: str, expected: str, got: Any) -> None:
    if not ok:
        raise UsageError(f"{flag}: expected {expected}, got {got!r}")


#: Each setting's name on the command line, for the shared rules' messages (nnjax.checks).
FLAG_NAMES = {"learning_rate": "--lr", "momentum": "--momentum", "clip_norm": "--clip-norm",
              "clip_value": "--clip-value", "decay_rate": "--decay-rate", "decay_steps": "--decay-epochs",
              "warmup_steps": "--warmup-epochs"}


def check_args(args: argparse.Namespace) -> None:
    """Every number of the command line, by the rules the API and the estimators share."""
    check(args.epochs >= 1, "--epochs", "an integer >= 1", args.epochs)
    check(args.batch_size >= 1, "--batch-size", "an integer >= 1", args.batch_size)
    check(args.optimizer in checks.OPTIMIZERS, "--optimizer", f"one of {', '.join(checks.OPTIMIZERS)}", args.optimizer)
    check(args.schedule in checks.SCHEDULES, "--schedule", f"one of {', '.join(checks.SCHEDULES)}", args.schedule)
    check(args.seeds >= 1, "--seeds", "an integer >= 1", args.seeds)
    check(args.checkpoint_every >= 0, "--checkpoint-every", "an integer >= 0", args.checkpoint_every)
    check(args.progress_every >= 0, "--progress-every", "an integer >= 0", args.progress_every)
    check(args.early_stopping >= 0, "--early-stopping", "a patience >= 0 (0: off)", args.early_stopping)
    check(-2**63 <= args.seed < 2**63, "--seed", "an integer in [-2**63, 2**63) (a 64-bit seed)", args.seed)
    for flag in ("out", "resume", "config", "data"):  # '' is no path (it would mean the current folder or none)
        value = getattr(args, flag, None)
        check(value is None or str(value).strip() != "", f"--{flag}", "a path", value)
    if getattr(args, "tensorboard", None):
        check(not os.path.exists(args.tensorboard) or os.path.isdir(args.tensorboard), "--tensorboard",
              "a directory (or a new one)", args.tensorboard)
    try:
        checks.check_optimizer(learning_rate=None if args.lr == "auto" else args.lr, momentum=args.momentum, clip_norm=args.clip_norm,
                               clip_value=args.clip_value, names=FLAG_NAMES)
        # --decay-epochs and --warmup-epochs count epochs; every schedule's are checked, used or not
        checks.check_schedule(decay_rate=args.decay_rate, decay_steps=args.decay_epochs,
                              warmup_steps=args.warmup_epochs, names=FLAG_NAMES)
        for flag in ("l1", "l2", "min_delta"):
            checks.check(flag, getattr(args, flag), "--" + flag.replace("_", "-"))
        checks.check_split(args.test_fraction, args.validation_fraction, ("--test-fraction", "--validation-fraction"))
    except (TypeError, ValueError) as err:
        raise UsageError(str(err)) from None
