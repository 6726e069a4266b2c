"""``nnjax train``: validate everything, then train in compiled chunks with progress and checkpoints.

A thin face over the library: the arguments become an :class:`~nnjax.train.options.Options`
record (:mod:`nnjax.cli._setup`), the run a plan (:func:`nnjax.fitting.plan`, or
:func:`nnjax.population.plan_population` for ``--seeds N``), and the chunk runner
(:func:`nnjax.train.runner.train`) trains it with the progress bar, ``--tensorboard`` and the
checkpoint writer as hooks. A continued run is bit for bit the run done in one go, so chunks only
decide when the host sees progress and when a checkpoint is written. ``--resume DIR`` restores
the newest checkpoint and carries on with the same chunks; a damaged checkpoint stops it before
any file is written, and ``--from-intact`` carries on from the newest intact one instead.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import os
import pathlib
import shutil
import signal
import sys
import threading
import time
from typing import Any

import jax
import numpy as np

from nnjax import __version__
from nnjax._base import files
from nnjax.io import checkpoint, run_history, runs
from nnjax.train import fitting, runner
from nnjax.report.diagnosis import diagnose
from nnjax.report.summary import summary as describe
from nnjax.nn import network
from nnjax.cli._setup import Setup, make_setup
from nnjax.cli._errors import UsageError
from nnjax.cli._parser import RUN_CONTROL

__all__ = ["plan_run", "run_training", "save_run", "train", "write_outputs"]


def plan_run(setup: Setup) -> Any:
    """The run's plan, checked and started once: one model, or a population for ``--seeds N``
    (:func:`nnjax.fitting.plan`, :func:`nnjax.population.plan_population`)."""
    key = jax.random.key(setup.args.seed)
    if setup.args.seeds == 1:
        return fitting.plan(key, setup.net, setup.data, setup.options)
    from nnjax.train import population

    return population.plan_population(jax.random.split(key, setup.args.seeds), setup.net, setup.data, setup.options)


def _all_stopped(result: Any) -> bool:
    return bool(np.all(np.asarray(result.train_state.stopped)))


def _epoch_axis(result: Any) -> int:
    """The history's epoch axis: 0, or 1 for a population (a leading member axis)."""
    return int(np.ndim(result.train_state.epoch))


class _Checkpoints(runner.Hook):
    """Saves the run at every ``--checkpoint-every`` epoch and when training ends; calls
    ``after_first_save`` (if any) once the first of them is complete.

    A checkpoint holds the history of its own epochs only, those since the previous checkpoint;
    once it is complete they are written as a segment of ``RUN/history`` (see
    :mod:`nnjax.io.run_history`). ``start``: the epochs whose history is on disk already;
    ``pending``: the segment a restored checkpoint's tail makes (written before the first save,
    if not there yet: a run stopped between a checkpoint and its segment).
    """

    def __init__(self, directory: pathlib.Path, after_first_save: Any = None, *, start: int = 0,
                 pending: tuple | None = None):
        self.directory, self.after_first_save = directory, after_first_save
        self.start, self.head, self.pending = start, "", pending

    def on_checkpoint(self, done: int, result: Any, finished: bool) -> None:
        run_dir = self.directory.parent
        if self.pending is not None:
            segment, start, end, previous = self.pending
            self.head = run_history.write_segment(run_dir, segment, start=start, end=end, previous=previous)
            self.pending = None
        tail = run_history.rows(result.history, self.start, done, _epoch_axis(result))
        metadata = {"epochs_done": done, "finished": finished, "history": {"from": self.start, "head": self.head}}
        checkpoint.save(self.directory, result._replace(history=tail), step=done, metadata=metadata)
        if self.after_first_save is not None:
            self.after_first_save, after = None, self.after_first_save
            after()
        self.head = run_history.write_segment(run_dir, tail, start=self.start, end=done, previous=self.head)
        self.start = done


class _Interrupts(runner.Hook):
    """Ctrl-C raises ``KeyboardInterrupt`` where it lands, as usual (a checkpoint save finishes
    first: :func:`nnjax._base.files.interrupts_deferred`). One that lands where Python cannot raise
    it -- a garbage-collection callback reports "Exception ignored" and carries on -- is raised at
    the next chunk boundary instead, and that report is not printed."""

    def __init__(self):
        self.received, self.previous = False, None

    def on_compiled(self, done: int) -> None:  # installed inside the runner's try: on_close restores
        if threading.current_thread() is not threading.main_thread():  # main() run in a thread: as it was
            return
        self.previous = signal.signal(signal.SIGINT, self._handle)
        self.previous_report = sys.unraisablehook
        sys.unraisablehook = self._report

    def _handle(self, signum: int, frame: Any) -> None:
        self.received = True
        raise KeyboardInterrupt

    def _report(self, unraisable: Any) -> None:
        if not isinstance(unraisable.exc_value, KeyboardInterrupt):
            self.previous_report(unraisable)

    def on_chunk(self, done: int, chunk: Any) -> None:
        if self.received:  # the interrupt was swallowed: raise it now
            raise KeyboardInterrupt

    def on_close(self) -> None:
        if self.previous is None:
            return
        if signal.getsignal(signal.SIGINT) == self._handle:
            signal.signal(signal.SIGINT, self.previous)
        # Put the previous report hook back only if nobody wrapped ours meanwhile (a checkpoint save
        # installs integrity's filter once per process: dropping it would bring its reports back).
        if sys.unraisablehook == self._report:
            sys.unraisablehook = self.previous_report
        self.previous = None


def run_training(setup: Setup, plan: Any, ckpt_dir: pathlib.Path, result: Any, done: int,
                 after_first_save: Any = None, pending: tuple | None = None) -> tuple[Any, float]:
    """Trains from ``result`` (None: from scratch) after ``done`` epochs up to ``--epochs``, with
    :func:`nnjax.train.runner.train`: a bar (unless ``--quiet``), ``--tensorboard`` and checkpoints as hooks.

    ``pending``: the history segment of the restored checkpoint (see :class:`_Checkpoints`).

    Returns the final result (history over every epoch run) and the seconds spent.
    """
    args = setup.args
    hooks: list = [_Interrupts(), _Checkpoints(ckpt_dir, after_first_save, start=done, pending=pending)]
    if not args.quiet:
        hooks.append(runner.ProgressBar(args.epochs, done=done, label="nnjax train"))
    board = _board(args, ckpt_dir.parent, done)
    if board is not None:
        hooks.append(board)
    start = time.perf_counter()
    try:
        outcome = runner.train(plan, args.epochs, start=None if result is None else result.train_state, done=done,
                               history=None if result is None else result.history, every=args.progress_every or None,
                               checkpoint_every=args.checkpoint_every, hooks=hooks)
    finally:
        if board is not None:
            board.close()
    return outcome.result, time.perf_counter() - start


def tensorboard_dir(args: argparse.Namespace, run_dir: pathlib.Path) -> pathlib.Path | None:
    """Where ``--tensorboard`` writes (RUN_DIR/tensorboard without a DIR); None without the flag."""
    if getattr(args, "tensorboard", None) is None:
        return None
    return pathlib.Path(args.tensorboard) if args.tensorboard else run_dir / "tensorboard"


def _board(args: argparse.Namespace, run_dir: pathlib.Path, done: int) -> Any:
    """The TensorBoard writer of ``--tensorboard`` (None without it); a resumed run replaces epochs from ``done``."""
    logdir = tensorboard_dir(args, run_dir)
    if logdir is None:
        return None
    from nnjax.report.tensorboard import Writer

    return Writer(logdir, purge_step=done or None)


def _restore(setup: Setup, plan: Any, ckpt_dir: pathlib.Path) -> tuple[Any, int, int | None, tuple | None]:
    """The newest checkpoint of a run as a FitResult with its whole history, its epoch count, its step
    and the history segment its own epochs make (None, 0, None, None without one).

    Nothing is written. A damaged newest checkpoint is a UsageError naming the newest intact one,
    which ``--from-intact`` continues from instead.
    """
    step = checkpoint.latest_step(ckpt_dir)
    if step is None:
        return None, 0, None, None
    like = jax.eval_shape(lambda ts: plan.run(ts, 1), plan.ts)  # the structure, nothing computed
    try:
        result = checkpoint.restore(ckpt_dir, like=like, step=step)
    except checkpoint.CheckpointError as err:
        if err.intact_step is None:
            raise UsageError(f"--resume: {err}; start a new run instead") from None
        if not setup.args.from_intact:
            raise UsageError(f"--resume: {err}; continue from it with --resume {setup.args.resume} --from-intact") \
                from None
        step = err.intact_step
        print(f"nnjax: note: {err.step_dir} is damaged ({err.reason}); continuing from {ckpt_dir / str(step)}",
              file=sys.stderr)
        result = checkpoint.restore(ckpt_dir, like=like, step=step)
    metadata = checkpoint.restore_metadata(ckpt_dir, step=step)
    done = int(metadata.get("epochs_done", step))
    axis = _epoch_axis(result)
    try:
        history = run_history.whole(ckpt_dir.parent, result.history, metadata, axis)
    except run_history.HistoryError as err:
        raise UsageError(f"--resume: {err}") from None
    entry = metadata.get("history") or {"from": 0, "head": ""}  # older checkpoints hold the whole history
    start = int(entry["from"])
    pending = (run_history.rows(history, start, done, axis), start, done, str(entry["head"]))
    return result._replace(history=history), done, step, pending


def _set_aside_newer(run_dir: pathlib.Path, step: int | None) -> None:
    """Moves the checkpoints newer than ``step`` (the damaged ones --from-intact passed over) out of
    the checkpoint directory, so that training writes those steps anew; they are kept for inspection."""
    ckpt_dir = run_dir / runs.CHECKPOINTS
    newer = [s for s in checkpoint.steps(ckpt_dir) if step is not None and s > step]
    for s in newer:
        target = run_dir / "damaged_checkpoints" / str(s)
        suffix = 1
        while target.exists():
            suffix += 1
            target = run_dir / "damaged_checkpoints" / f"{s}-{suffix}"
        target.parent.mkdir(exist_ok=True)
        (ckpt_dir / str(s)).rename(target)


def _members(result: Any, seeds: int) -> list:
    if seeds == 1:
        return [result]
    return [jax.tree.map(lambda a, i=i: a[i], result) for i in range(seeds)]


def _best_member(result: Any, seeds: int) -> int:
    if seeds == 1:
        return 0
    from nnjax.train import population

    return population.best_index(result)


def _outputs(setup: Setup, member: Any) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Each split's ``(logits, y)``, from one compiled forward pass over the rows of all splits
    (evaluation mode treats rows independently; one program instead of one per split's size)."""
    xs = [x for x, _ in setup.splits.values()]
    logits = np.asarray(network.apply_compiled(member.params, np.concatenate(xs), setup.net, state=member.state))
    parts = np.split(logits, np.cumsum([len(x) for x in xs])[:-1])
    return {name: (out, y) for (name, (_, y)), out in zip(setup.splits.items(), parts)}


def _diagnosis(history: dict) -> dict:
    found = diagnose(history)
    fields = dataclasses.asdict(found) if dataclasses.is_dataclass(found) else {}
    fields["verdict"] = getattr(found, "verdict", None)
    fields["report"] = found.report() if hasattr(found, "report") else str(found)
    return fields


def _plots(setup: Setup, run_dir: pathlib.Path, history: dict, outputs: dict) -> list[str]:
    """Writes the run's PNGs (``outputs``: the best member's :func:`_outputs`); returns their names
    (none without matplotlib, with a note)."""
    if setup.args.no_plots:
        return []
    from nnjax.report import plots

    title = setup.source.get("name") or pathlib.Path(setup.source["path"]).name
    try:
        plots.plot_history(history, path=run_dir / "loss.png", title=title)
        if "layer_grad_norm" in history:
            plots.plot_gradient_norms(history, path=run_dir / "gradient_norms.png")
        if setup.prep.task == "classification":
            split = next(n for n in ("test", "validation", "train") if n in outputs)
            logits, y = outputs[split]
            predicted = setup.prep.decode(logits)
            plots.plot_confusion_matrix(y, predicted, class_names=setup.prep.class_names,
                                        path=run_dir / "confusion_matrix.png", title=f"confusion matrix, {split} split")
    except ImportError as err:  # matplotlib is optional: the run is complete without its plots
        print(f"nnjax: note: no plots written ({err})", file=sys.stderr)
    return sorted(p.name for p in run_dir.glob("*.png"))


def write_outputs(setup: Setup, run_dir: pathlib.Path, result: Any, seconds: float) -> dict:
    """History, metrics, diagnosis and plots of a finished run; returns the summary."""
    args = setup.args
    population = args.seeds > 1
    history = {k: np.asarray(v) for k, v in result.history.items()}
    runs.write_history(run_dir, history, population=population)
    members = _members(result, args.seeds)
    best = _best_member(result, args.seeds)
    outputs = [_outputs(setup, m) for m in members]
    scores = [runs.score_splits(setup.prep, o) for o in outputs]
    epochs_run = int(np.max(np.sum(~np.asarray(history["stopped"], bool), axis=-1)))
    metrics = {"task": setup.prep.task, "loss": setup.prep.loss, "epochs": args.epochs, "epochs_run": epochs_run,
               "seeds": args.seeds, "best_member": best, "train_seconds": seconds, **scores[best]}
    if population:
        metrics["members"] = scores
    diagnosis = _diagnosis(jax.tree.map(lambda a: a[best], history) if population else history)
    runs.write_json(run_dir / "metrics.json", metrics)
    runs.write_json(run_dir / "diagnosis.json", diagnosis)
    runs.write_text(run_dir / "diagnosis.txt", str(diagnosis["report"]).rstrip() + "\n")
    pngs = _plots(setup, run_dir, history, outputs[best])
    layers = describe(setup.net)
    runs.write_text(run_dir / "summary.txt", f"{layers}\n")
    summary = {"run_dir": str(run_dir), "data": setup.source.get("name") or setup.source["path"],
               "task": setup.prep.task, "loss": setup.prep.loss, "sizes": list(setup.net.sizes),
               "parameters": layers.total_params, "epochs": args.epochs, "epochs_run": epochs_run,
               "seeds": args.seeds, "best_member": best,
               "train_seconds": round(seconds, 3), "diagnosis": diagnosis["verdict"], "plots": pngs}
    for split, values in scores[best].items():  # scalars only: per-class lists stay in metrics.json
        summary.update({f"{split}_{k}": v for k, v in values.items() if v is None or isinstance(v, (int, float))})
    if population:
        for key in ("accuracy", "r2"):
            values = [s["test"][key] for s in scores if key in s.get("test", {})]
            if values:
                summary[f"test_{key}_mean"], summary[f"test_{key}_std"] = float(np.mean(values)), float(np.std(values))
    return summary


def save_run(setup: Setup, run_dir: pathlib.Path, result: Any, seconds: float = 0.0) -> dict:
    """A model trained elsewhere written as a finished run of ``nnjax train`` (``nnjax tune`` saves
    its best member so): config, preprocessing, one checkpoint at ``--epochs``, history, metrics
    and plots, by the writers ``train`` uses; ``nnjax evaluate``/``predict`` and ``nnjax.load``
    open it. ``setup.args`` must describe the result (its settings, ``seeds`` 1, ``epochs``).
    Returns the summary."""
    run_dir.mkdir(parents=True, exist_ok=True)
    runs.write_json(run_dir / runs.CONFIG, _config(setup))
    runs.write_json(run_dir / runs.PREPROCESSING, setup.prep._asdict())
    done = int(setup.args.epochs)
    checkpoint.save(run_dir / runs.CHECKPOINTS, result, step=done, metadata={"epochs_done": done, "finished": True})
    return write_outputs(setup, run_dir, result, seconds)


def _check_tensorboard() -> None:
    try:
        import tensorboardX  # noqa: F401
    except ImportError:
        raise UsageError("--tensorboard: expected the tensorboardX package, got none installed; "
                         "pip install 'nnjax[tensorboard]' (or drop --tensorboard)") from None


def _default_out(setup: Setup) -> pathlib.Path:
    name = setup.source.get("name") or pathlib.Path(setup.source["path"]).stem
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    path = pathlib.Path("runs") / f"{name}-{stamp}"
    suffix = 1
    while path.exists():
        suffix += 1
        path = pathlib.Path("runs") / f"{name}-{stamp}-{suffix}"
    return path


def _config(setup: Setup) -> dict:
    saved = {k: v for k, v in vars(setup.args).items() if k not in RUN_CONTROL}
    saved["no_plots"] = bool(setup.args.no_plots)  # steers no result, but --resume keeps it (plots stay off)
    if setup.source.get("path"):
        saved["data"] = setup.source["path"]  # absolute: --config and --resume work from any folder
    return {"args": saved, "data": setup.source, "argv": sys.argv[1:],
            "versions": {"nnjax": __version__, "jax": jax.__version__, "python": sys.version.split()[0]},
            "written": datetime.datetime.now().isoformat(timespec="seconds")}


def _check_resumable(setup: Setup, run_dir: pathlib.Path) -> None:
    saved = runs.read_json(run_dir / runs.CONFIG, "--resume")
    if saved.get("data", {}).get("sha256") != setup.source.get("sha256"):
        raise UsageError(f"--resume: the data file {setup.source.get('path')} changed since the run started")
    if setup.args.schedule != "constant" and saved["args"].get("epochs") != setup.args.epochs:
        raise UsageError(f"--epochs: the {setup.args.schedule} schedule was laid out for {saved['args']['epochs']} "
                         "epochs; a resumed run cannot change its length")


def _check_writable(run_dir: pathlib.Path) -> None:
    """A run directory can be created under its nearest existing ancestor (checked before any write)."""
    ancestor = run_dir
    while not ancestor.exists() and ancestor != ancestor.parent:
        ancestor = ancestor.parent
    if ancestor.exists() and not ancestor.is_dir():
        raise UsageError(f"--out: cannot create {str(run_dir)!r}: {str(ancestor)!r} is a file, not a directory")
    if not os.access(ancestor, os.W_OK | os.X_OK):
        raise UsageError(f"--out: cannot create {str(run_dir)!r}: no permission to write in {str(ancestor)!r}")


def _report(summary: dict, args: argparse.Namespace) -> None:
    if args.json:
        import json

        print(json.dumps(runs.plain(summary)))
    elif not args.quiet:
        print((pathlib.Path(summary["run_dir"]) / "summary.txt").read_text(encoding="utf-8"), end="")
        metric = "accuracy" if summary["task"] == "classification" else "r2"
        split = next((s for s in ("test", "validation", "train") if f"{s}_{metric}" in summary), "train")
        print(f"trained {'-'.join(map(str, summary['sizes']))} on {summary['data']}: {summary['epochs_run']} epochs "
              f"in {summary['train_seconds']:.1f} s")
        held_out = "" if split != "train" else " (nothing held out: scored on the data it trained on)"
        print(f"{split} {metric} {summary[f'{split}_{metric}']:.4f}, {split} loss {summary[f'{split}_loss']:.4f}"
              + held_out
              + (f" (best of {summary['seeds']} seeds)" if summary["seeds"] > 1 else "")
              + (f"; gradients: {summary['diagnosis']}" if summary["diagnosis"] else ""))
        print(f"run directory: {summary['run_dir']}")


def _claim_new(run_dir: pathlib.Path) -> tuple[files.DirectoryLock, bool]:
    """Claims a new run directory for this process: creates it (or takes an empty one) and holds
    its lock, so that two runs given one ``--out`` cannot share it. Returns the lock and whether
    this process created the directory. Nothing is deleted on failure (it may be another's)."""
    inside = runs.run_containing(run_dir, itself=False)
    if inside is not None:
        raise UsageError(f"--out: expected a directory outside other runs, got {str(run_dir)!r} inside the run "
                         f"{str(inside)!r}")
    _check_not_empty(run_dir)
    _check_writable(run_dir)
    try:
        run_dir.parent.mkdir(parents=True, exist_ok=True)
        os.mkdir(run_dir)
        created = True
    except FileExistsError:
        created = False
    except OSError as err:
        raise UsageError(f"--out: cannot create {str(run_dir)!r} ({err.strerror or type(err).__name__})") from None
    if not run_dir.is_dir():
        raise UsageError(f"--out: cannot create {str(run_dir)!r}: it exists and is not a directory")
    try:
        lock = files.DirectoryLock.acquire(run_dir)
    except files.Locked as err:
        raise UsageError(f"--out: {err}; choose another directory") from None
    except OSError as err:
        raise UsageError(f"--out: cannot write in {str(run_dir)!r} ({err.strerror or type(err).__name__})") from None
    try:
        _check_not_empty(run_dir, locked=True)  # again, holding the lock: another run may have come and gone
    except UsageError:
        lock.release()
        raise
    return lock, created


def _check_not_empty(run_dir: pathlib.Path, locked: bool = False) -> None:
    held = files.holder(run_dir) if run_dir.is_dir() and not locked else None
    if held is not None:
        raise UsageError(f"--out: {run_dir} is in use by {held}; choose another directory")
    if run_dir.exists() and (not run_dir.is_dir() or any(p.name != files.LOCK for p in run_dir.iterdir())):
        raise UsageError(f"--out: {str(run_dir)!r} exists and is not empty; choose another directory or "
                         f"continue it with --resume {run_dir}")


def _claim_existing(run_dir: pathlib.Path) -> files.DirectoryLock:
    """The lock of the run ``--resume`` continues: one process at a time trains a run."""
    if not run_dir.is_dir():
        raise UsageError(f"--resume: expected a run directory, got {str(run_dir)!r}")
    try:
        return files.DirectoryLock.acquire(run_dir)
    except files.Locked as err:
        raise UsageError(f"--resume: {err}; wait for it to finish") from None
    except OSError as err:
        raise UsageError(f"--resume: cannot write in {str(run_dir)!r} ({err.strerror or type(err).__name__})") \
            from None


def _after_failure(run_dir: pathlib.Path, created: bool, fresh: bool) -> str | None:
    """Clean-up after a failed run, with the lock still held: a new run without a complete
    checkpoint is removed (every file in it is this process's: it was empty when claimed); a run
    with one, or a resumed run, keeps every complete checkpoint. Returns the advice to resume, if any."""
    ckpt_dir = run_dir / runs.CHECKPOINTS
    try:
        step = checkpoint.latest_step(ckpt_dir)
    except Exception:  # an unreadable checkpoint directory: keep everything, say nothing more
        return None
    if step is not None or not fresh:
        where = f"its checkpoints up to epoch {step} are kept" if step is not None else "nothing was changed"
        return f"{where}; continue with nnjax train --resume {run_dir}"
    if created:
        shutil.rmtree(run_dir, ignore_errors=True)
    else:  # an empty directory given as --out: empty it again (the lock file goes with the lock)
        for entry in run_dir.iterdir():
            if entry.name != files.LOCK:
                shutil.rmtree(entry, ignore_errors=True) if entry.is_dir() else entry.unlink(missing_ok=True)
    return None


def train(args: argparse.Namespace) -> int:
    """The ``nnjax train`` command; returns the exit code."""
    setup = make_setup(args)  # every input check happens here, before anything is written
    if getattr(args, "tensorboard", None) is not None:
        _check_tensorboard()
    plan = plan_run(setup)
    restored = None, 0, None, None
    if args.resume:
        run_dir, created = pathlib.Path(args.resume), False
        lock = _claim_existing(run_dir)
        try:
            _check_resumable(setup, run_dir)
            restored = _restore(setup, plan, run_dir / runs.CHECKPOINTS)  # reads only: a damaged one stops here
            done = restored[1]
            if args.epochs < done:
                raise UsageError(f"--epochs: expected at least the {done} epochs already trained (a resumed run "
                                 f"trains up to --epochs), got {args.epochs}")
            if restored[0] is None:
                print(f"nnjax: note: {run_dir / runs.CHECKPOINTS} holds no checkpoint; training from epoch 0",
                      file=sys.stderr)
        except BaseException:
            lock.release()
            raise
    else:
        run_dir = pathlib.Path(args.out) if args.out else _default_out(setup)
        lock, created = _claim_new(run_dir)
    flag = "--resume" if args.resume else "--out"
    try:
        ckpt_dir = run_dir / runs.CHECKPOINTS
        config = _config(setup)
        if not args.resume:  # a resumed run rewrites config.json once its first new checkpoint is complete
            try:
                runs.write_json(run_dir / runs.CONFIG, config)
                runs.write_json(run_dir / runs.PREPROCESSING, setup.prep._asdict())
            except OSError as err:
                raise UsageError(f"--out: cannot write the run directory {str(run_dir)!r} "
                                 f"({err.strerror or type(err).__name__})") from None
        result, done, step, pending = restored
        if args.resume:
            _set_aside_newer(run_dir, step)
        seconds = 0.0
        if result is None or (done < args.epochs and not _all_stopped(result)):
            after_save = (lambda: runs.write_json(run_dir / runs.CONFIG, config)) if args.resume else None
            result, seconds = run_training(setup, plan, ckpt_dir, result, done, after_first_save=after_save,
                                           pending=pending)
        summary = write_outputs(setup, run_dir, result, seconds)
    except KeyboardInterrupt:  # every complete checkpoint is kept; main prints this one line
        lock.release()
        raise KeyboardInterrupt(f"interrupted; continue with: nnjax train --resume {run_dir}") from None
    except UsageError:
        _after_failure(run_dir, created, fresh=not args.resume)
        lock.release()
        raise
    except OSError as err:  # storage: disk full, read-only, no permission (the file named in err)
        advice = _after_failure(run_dir, created, fresh=not args.resume)
        lock.release()
        raise UsageError(f"{flag}: {err}" + (f"; {advice}" if advice else "")) from None
    except BaseException:
        advice = _after_failure(run_dir, created, fresh=not args.resume)
        lock.release()
        if advice:
            print(f"nnjax: note: the run failed; {advice}", file=sys.stderr)
        raise
    lock.release()
    _report(summary, args)
    return 0
