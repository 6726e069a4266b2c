"""Faults injected into files, disks and processes: nothing complete is ever lost.

Each test breaks something on purpose -- a FIFO, a device or a directory where a file goes, a
symbolic link, a disk that fills up (a real 300 KB tmpfs where one can be mounted, else a write that
fails with ENOSPC), a read-only file system, a second process on the same run directory -- and
checks the three promises: one line of error naming the path (exit 2 at the command line), no
file that was complete is lost or changed, and the run stays resumable bit for bit.
"""

from __future__ import annotations

import errno
import json
import os
import pathlib
import shutil
import signal
import stat
import subprocess
import sys
import textwrap
import time

import jax
import numpy as np
import pytest

from nnjax import checkpoint
from nnjax._base import files
from nnjax.cli import main
from nnjax.io import run_history

ROOT = pathlib.Path(__file__).resolve().parent.parent
ENV = {**os.environ, "PYTHONPATH": str(ROOT), "JAX_PLATFORMS": "cpu", "NNJAX_CACHE_DIR": "off"}
XOR = ["--dataset", "xor", "--hidden", "4", "--quiet", "--no-plots"]


def _snapshot(directory: pathlib.Path) -> dict:
    """Every file under ``directory`` with its bytes (what "nothing changed" compares)."""
    return {p.relative_to(directory): p.read_bytes() for p in sorted(directory.rglob("*")) if p.is_file()}


def _one_line(code: int, err: str, *needles: str) -> None:
    assert code == 2, err
    assert err.startswith("nnjax: error: ") and err.count("\n") == 1 and "Traceback" not in err, err
    for needle in needles:
        assert needle in err, err


def _leftovers(directory: pathlib.Path) -> list[str]:
    """Temporary files and unfinished checkpoint steps a failed write might have left."""
    return sorted(str(p) for p in directory.rglob("*") if p.name.endswith(".tmp") or "orbax-checkpoint-tmp" in p.name)


def _final_arrays(run_dir: pathlib.Path) -> list[np.ndarray]:
    """The newest checkpoint's arrays, its history whole (the segments before it and its own epochs)."""
    tree = checkpoint.restore(run_dir / "checkpoints")
    tree["history"] = run_history.whole(run_dir, tree["history"], checkpoint.restore_metadata(run_dir / "checkpoints"))
    leaves = jax.tree.leaves(tree)
    return [np.asarray(jax.random.key_data(x) if jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key) else x)
            for x in leaves]


@pytest.fixture(autouse=True)
def _no_handler_left_behind():
    """Every test ends with Python's own Ctrl-C handler in place (nnjax train installs one while it trains)."""
    yield
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler, signal.getsignal(signal.SIGINT)


@pytest.fixture(scope="module")
def run20(tmp_path_factory):
    """A finished 20-epoch xor run, checkpoints at 10 and 20."""
    out = tmp_path_factory.mktemp("faults") / "run"
    assert main(["train", *XOR, "--epochs", "20", "--checkpoint-every", "10", "--out", str(out)]) == 0
    return out


@pytest.fixture
def run_copy(run20, tmp_path):
    copy = tmp_path / "run"
    shutil.copytree(run20, copy)
    return copy


# ----------------------------------------------------------------------------------------------
# atomic_write: only regular files are replaced


def _special_files(tmp_path: pathlib.Path) -> dict:
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    (tmp_path / "folder").mkdir()
    found = {"a FIFO": fifo, "a directory": tmp_path / "folder"}
    try:  # a character device like /dev/null (root only): never write /dev/null itself in a test
        os.mknod(tmp_path / "null", 0o666 | stat.S_IFCHR, os.makedev(1, 3))
        found["a character device"] = tmp_path / "null"
    except PermissionError:
        print("no character device: mknod needs root")
    return found


def test_atomic_write_refuses_special_files_and_leaves_them_as_they_were(tmp_path):
    for kind, path in _special_files(tmp_path).items():
        mode = os.stat(path).st_mode
        with pytest.raises(files.WriteError, match=f"{path.name}: cannot write .*got {kind}"):
            files.atomic_write(path, lambda stream: stream.write("x"))
        assert os.stat(path).st_mode == mode  # still the FIFO, device or directory it was
        link = tmp_path / f"link-to-{path.name}"
        link.symlink_to(path)
        with pytest.raises(files.WriteError, match=f"got {kind} \\(a link to"):
            files.atomic_write(link, lambda stream: stream.write("x"))
        assert link.is_symlink()
    assert not list(tmp_path.glob(".*.tmp"))


def test_atomic_write_writes_through_a_symbolic_link(tmp_path):
    (tmp_path / "real.csv").write_text("old")
    link = tmp_path / "link.csv"
    link.symlink_to("real.csv")
    files.atomic_write(link, lambda stream: stream.write("new"))
    assert link.is_symlink() and os.readlink(link) == "real.csv"
    assert (tmp_path / "real.csv").read_text() == "new"
    dangling = tmp_path / "dangling.csv"
    dangling.symlink_to(tmp_path / "sub" / "made.csv")
    files.atomic_write(dangling, lambda stream: stream.write("made"))
    assert dangling.is_symlink() and (tmp_path / "sub" / "made.csv").read_text() == "made"


def test_atomic_write_storage_error_names_the_file_and_keeps_the_old_one(tmp_path, monkeypatch):
    path = tmp_path / "out.csv"
    path.write_text("complete")

    def disk_fills(stream):
        stream.write("half")
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    with pytest.raises(files.WriteError) as caught:
        files.atomic_write(path, disk_fills)
    assert str(caught.value) == f"{path}: cannot write (No space left on device)"
    assert caught.value.errno == errno.ENOSPC and isinstance(caught.value, OSError)
    assert path.read_text() == "complete" and _leftovers(tmp_path) == []

    def read_only(*args, **kwargs):
        raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(tmp_path / ".out.csv.x.tmp"))

    monkeypatch.setattr(files.tempfile, "mkstemp", read_only)
    with pytest.raises(files.WriteError) as caught:
        files.atomic_write(path, lambda stream: stream.write("x"))
    assert str(caught.value) == f"{path}: cannot write (Read-only file system)"  # not the temporary name
    assert path.read_text() == "complete"


# ----------------------------------------------------------------------------------------------
# nnjax predict --out


def _predict(capsys, run_dir, out, data) -> tuple[int, str]:
    code = main(["predict", str(run_dir), "--data", str(data), "--out", str(out)])
    return code, capsys.readouterr().err


@pytest.fixture
def rows(tmp_path):
    path = tmp_path / "rows.csv"
    path.write_text("x0,x1\n0.5,-0.5\n1,1\n")
    return path


def test_predict_out_refuses_special_files_and_paths_inside_runs(run20, tmp_path, rows, capsys):
    before = _snapshot(run20)
    cases = {path: (kind,) for kind, path in _special_files(tmp_path).items()}
    cases.update({run20 / "config.json": ("inside the run",), run20 / "predictions.csv": ("inside the run",),
                  run20 / "checkpoints" / "10" / "x.csv": ("inside the run",), run20: ("inside the run",)})
    for out, needles in cases.items():
        mode = os.lstat(out).st_mode if out.exists() else None
        code, err = _predict(capsys, run20, out, rows)
        _one_line(code, err, "--out", *needles)
        assert (os.lstat(out).st_mode if out.exists() else None) == mode
    code, err = _predict(capsys, run20, "", rows)
    _one_line(code, err, "--out: expected a file path, got ''")
    assert _snapshot(run20) == before


def test_predict_out_writes_through_a_link_and_names_the_file_on_a_read_only_disk(run20, tmp_path, rows, capsys,
                                                                                    monkeypatch):
    link = tmp_path / "predictions.csv"
    link.symlink_to(tmp_path / "real.csv")
    code, err = _predict(capsys, run20, link, rows)
    assert code == 0, err
    assert link.is_symlink() and (tmp_path / "real.csv").read_text().startswith("prediction,")

    def read_only(*args, **kwargs):
        raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(tmp_path / ".x.tmp"))

    monkeypatch.setattr(files.tempfile, "mkstemp", read_only)
    code, err = _predict(capsys, run20, tmp_path / "new.csv", rows)
    _one_line(code, err, f"--out: {tmp_path / 'new.csv'}: cannot write (Read-only file system)")
    assert ".tmp" not in err and not (tmp_path / "new.csv").exists()


def test_predict_and_evaluate_refuse_values_beyond_float32_naming_the_column(run20, tmp_path, capsys):
    (tmp_path / "big.csv").write_text("x0,x1,y\n0.5,0.5,0\n0.1,1e39,1\n")
    for command in (["predict"], ["evaluate", "--target", "y"]):
        code = main([*command, str(run20), "--data", str(tmp_path / "big.csv")])
        _one_line(code, capsys.readouterr().err, "column 'x1'", "1e+39", "float32")


# ----------------------------------------------------------------------------------------------
# nnjax train: a failure keeps every complete checkpoint; a resume that fails changes nothing


@pytest.fixture
def disk_full_at(monkeypatch):
    """``disk_full_at(step)``: every checkpoint save of ``step`` or later fails with ENOSPC once the
    step's files are written into orbax's temporary directory, just before its commit (the rename)."""
    from orbax.checkpoint._src.path import atomicity

    original = atomicity.AtomicRenameTemporaryPath.finalize

    def inject(step: int) -> None:
        async def finalize(self, *args, **kwargs):
            name = self.get_final().name  # the step's commit (its items commit inside it first)
            if name.isdigit() and int(name) >= step:
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
            return await original(self, *args, **kwargs)

        monkeypatch.setattr(atomicity.AtomicRenameTemporaryPath, "finalize", finalize)

    return inject


def test_disk_full_after_two_checkpoints_keeps_them_and_the_run_resumes_bit_for_bit(tmp_path, capsys, disk_full_at,
                                                                                     monkeypatch):
    out = tmp_path / "full"
    disk_full_at(30)
    code = main(["train", *XOR, "--epochs", "40", "--checkpoint-every", "10", "--out", str(out)])
    _one_line(code, capsys.readouterr().err, f"{out / 'checkpoints' / '30'}: cannot write (No space left on device)",
              "up to epoch 20 are kept", f"--resume {out}")
    assert checkpoint.steps(out / "checkpoints") == [10, 20] and _leftovers(out) == []
    config = (out / "config.json").read_bytes()
    code = main(["train", "--resume", str(out), "--quiet"])  # the disk is still full
    _one_line(code, capsys.readouterr().err, "No space left on device")
    assert (out / "config.json").read_bytes() == config and checkpoint.steps(out / "checkpoints") == [10, 20]
    assert _leftovers(out) == []
    monkeypatch.undo()  # space again: the run carries on to the end, as if nothing had happened
    assert main(["train", "--resume", str(out), "--quiet"]) == 0
    reference = tmp_path / "reference"
    assert main(["train", *XOR, "--epochs", "40", "--checkpoint-every", "10", "--out", str(reference)]) == 0
    assert checkpoint.steps(out / "checkpoints")[-1] == 40
    for mine, theirs in zip(_final_arrays(out), _final_arrays(reference), strict=True):
        np.testing.assert_array_equal(mine, theirs)


def test_failure_before_the_first_checkpoint_removes_only_what_the_run_created(tmp_path, capsys, disk_full_at):
    disk_full_at(0)
    new = tmp_path / "new"
    code = main(["train", *XOR, "--epochs", "4", "--out", str(new)])
    _one_line(code, capsys.readouterr().err, "No space left on device")
    assert not new.exists()
    given = tmp_path / "given"  # an empty directory the user made: emptied again, not removed
    given.mkdir()
    code = main(["train", *XOR, "--epochs", "4", "--out", str(given)])
    _one_line(code, capsys.readouterr().err, "No space left on device")
    assert given.is_dir() and list(given.iterdir()) == []


def test_failed_resume_changes_no_file(run_copy, capsys, disk_full_at):
    before = _snapshot(run_copy)
    disk_full_at(0)
    code = main(["train", "--resume", str(run_copy), "--epochs", "30", "--quiet"])
    _one_line(code, capsys.readouterr().err, f"{run_copy / 'checkpoints' / '30'}", "No space left on device")
    assert _snapshot(run_copy) == before and _leftovers(run_copy) == []


def test_checkpoint_save_on_a_full_disk_leaves_no_partial_step(run20, tmp_path, disk_full_at):
    result = checkpoint.restore(run20 / "checkpoints")
    checkpoint.save(tmp_path, result, step=1)
    disk_full_at(2)
    with pytest.raises(files.WriteError, match=r"2: cannot write \(No space left on device\)"):
        checkpoint.save(tmp_path, result, step=2)
    assert checkpoint.steps(tmp_path) == [1] and _leftovers(tmp_path) == []


_MOUNT_TMPFS = textwrap.dedent(
    """
    set -e
    mount -t tmpfs -o size=300k tmpfs "$1"
    set +e
    "$2" -m nnjax train --dataset xor --hidden 4 --quiet --no-plots --epochs 400 --checkpoint-every 10 --out "$1/run"
    echo "exit $?" >&2
    cp -a "$1/run" "$3"
    """
)


@pytest.mark.slow
def test_a_real_full_disk_keeps_the_complete_checkpoints(tmp_path):
    """A 300 KB tmpfs in a private mount namespace (needs unshare and mount rights; skipped otherwise)."""
    if shutil.which("unshare") is None:
        pytest.skip("no unshare command to mount a private tmpfs")
    (tmp_path / "mnt").mkdir()
    proc = subprocess.run(["unshare", "-m", "sh", "-c", _MOUNT_TMPFS, "sh", str(tmp_path / "mnt"), sys.executable,
                           str(tmp_path / "copy")], env=ENV, capture_output=True, text=True, timeout=300)
    if "exit " not in proc.stderr:
        pytest.skip(f"cannot mount a tmpfs here: {proc.stderr.strip().splitlines()[-1:]}")
    err, status = proc.stderr.rsplit("exit ", 1)
    assert status.strip() == "2" and err.count("\n") == 1 and "No space left on device" in err, proc.stderr
    kept = checkpoint.steps(tmp_path / "copy" / "checkpoints")
    assert kept and kept == list(range(10, 10 * len(kept) + 1, 10)) and _leftovers(tmp_path / "copy") == []
    assert f"up to epoch {kept[-1]} are kept" in err
    assert checkpoint.intact_steps(tmp_path / "copy" / "checkpoints") == kept


# ----------------------------------------------------------------------------------------------
# Runs inside runs, two processes on one run


def test_train_out_inside_another_run_is_refused(run20, capsys):
    before = _snapshot(run20)
    for inside in (run20 / "checkpoints" / "99", run20 / "sub" / "run"):
        code = main(["train", *XOR, "--epochs", "2", "--out", str(inside)])
        _one_line(code, capsys.readouterr().err, "--out", f"inside the run {str(run20)!r}")
    assert _snapshot(run20) == before


_HOLD = textwrap.dedent(
    """
    import pathlib, sys
    from nnjax._base import files
    lock = files.DirectoryLock.acquire(sys.argv[1])
    (pathlib.Path(sys.argv[1]) / "config.json").write_text("{}")  # the holder's own file
    print("held", flush=True)
    sys.stdin.readline()
    lock.release()
    """
)


@pytest.fixture
def holder(tmp_path):
    """``holder(directory)``: a process that holds ``directory``'s lock until the test ends."""
    procs = []

    def hold(directory: pathlib.Path) -> subprocess.Popen:
        proc = subprocess.Popen([sys.executable, "-c", _HOLD, str(directory)], env=ENV, stdin=subprocess.PIPE,
                                stdout=subprocess.PIPE, text=True)
        procs.append(proc)
        assert proc.stdout.readline().strip() == "held"
        return proc

    yield hold
    for proc in procs:
        proc.kill()
        proc.communicate()


def test_a_second_run_on_a_claimed_directory_exits_and_deletes_nothing(tmp_path, capsys, holder):
    out = tmp_path / "claimed"
    out.mkdir()
    proc = holder(out)
    code = main(["train", *XOR, "--epochs", "2", "--out", str(out)])
    _one_line(code, capsys.readouterr().err, "--out", f"in use by another process (pid {proc.pid})")
    assert (out / "config.json").read_text() == "{}" and (out / files.LOCK).exists()


def test_two_resumes_at_once_the_second_exits_and_changes_nothing(run_copy, capsys, holder):
    (run_copy / "config.json").rename(run_copy / "config.saved")
    holder(run_copy)  # writes its own config.json: put the run's back while it holds the lock
    (run_copy / "config.saved").replace(run_copy / "config.json")
    before = _snapshot(run_copy)
    code = main(["train", "--resume", str(run_copy), "--epochs", "30", "--quiet"])
    _one_line(code, capsys.readouterr().err, "--resume", "in use by another process")
    assert _snapshot(run_copy) == before


def test_a_killed_holder_leaves_no_stale_lock(tmp_path, holder):
    proc = holder(tmp_path)
    with pytest.raises(files.Locked):
        files.DirectoryLock.acquire(tmp_path)
    proc.kill()
    proc.communicate()
    assert (tmp_path / files.LOCK).exists()  # the file stays, the kernel dropped the lock with the process
    with files.locked(tmp_path):
        pass
    assert not (tmp_path / files.LOCK).exists()


_RACE = textwrap.dedent(
    """
    import pathlib, sys, time
    from nnjax.cli import main
    barrier, me = pathlib.Path(sys.argv[1]), sys.argv[2]
    (barrier / me).touch()
    while len(list(barrier.iterdir())) < 2:  # both processes start training at the same moment
        time.sleep(0.001)
    sys.exit(main(sys.argv[3:]))
    """
)


@pytest.mark.slow
def test_two_trains_racing_for_one_out_one_wins_and_its_run_is_complete(tmp_path):
    out, barrier = tmp_path / "race", tmp_path / "barrier"
    barrier.mkdir()
    argv = ["train", *XOR, "--epochs", "4", "--checkpoint-every", "2", "--out", str(out)]
    procs = [subprocess.Popen([sys.executable, "-c", _RACE, str(barrier), str(i), *argv], env=ENV,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for i in range(2)]
    outputs = [p.communicate(timeout=300)[1] for p in procs]
    results = [(p.returncode, err) for p, err in zip(procs, outputs)]
    assert sorted(code for code, _ in results) == [0, 2], results
    err = next(e for code, e in results if code == 2)
    assert err.count("\n") == 1 and ("in use by another process" in err or "exists and is not empty" in err), err
    assert checkpoint.steps(out / "checkpoints") == [2, 4] and (out / "metrics.json").is_file()
    assert not (out / files.LOCK).exists()
    assert main(["evaluate", str(out), "--dataset", "xor"]) == 0


_RACE_RESUME = textwrap.dedent(
    """
    import pathlib, sys, time
    from nnjax.cli import _train, main  # JAX and the command imported before the barrier
    barrier, me = pathlib.Path(sys.argv[1]), sys.argv[2]
    (barrier / me).touch()
    while len(list(barrier.iterdir())) < 2:  # both processes resume at the same moment
        time.sleep(0.001)
    sys.exit(main(sys.argv[3:]))
    """
)


@pytest.mark.slow
def test_two_real_resumes_at_once_one_wins_and_the_other_changes_nothing(run_copy, tmp_path):
    """Two ``nnjax train --resume RUN`` processes: the loser exits 2 with one line naming the
    winner's pid, while the winner holds the run; the winner's result is the uninterrupted run's."""
    barrier = tmp_path / "barrier"
    barrier.mkdir()
    argv = ["train", "--resume", str(run_copy), "--epochs", "30", "--checkpoint-every", "5", "--quiet"]
    procs = [subprocess.Popen([sys.executable, "-c", _RACE_RESUME, str(barrier), str(i), *argv], env=ENV,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for i in range(2)]
    outputs = [p.communicate(timeout=300) for p in procs]
    codes = [p.returncode for p in procs]
    assert sorted(codes) == [0, 2], (codes, outputs)
    winner, loser = (procs[codes.index(0)], outputs[codes.index(2)])
    assert loser[0] == "" and loser[1].count("\n") == 1, loser
    assert loser[1].startswith("nnjax: error: --resume") and f"in use by another process (pid {winner.pid})" in \
        loser[1], loser
    assert checkpoint.steps(run_copy / "checkpoints") == [20, 25, 30] and _leftovers(run_copy) == []
    assert not (run_copy / files.LOCK).exists()
    reference = tmp_path / "reference"
    assert main(["train", *XOR, "--epochs", "30", "--out", str(reference)]) == 0
    for name in ("preprocessing.json", "history.csv"):  # (config.json records the command and the time)
        assert (run_copy / name).read_text() == (reference / name).read_text(), name
    for mine, theirs in zip(_final_arrays(run_copy), _final_arrays(reference), strict=True):
        np.testing.assert_array_equal(mine, theirs)


def test_ctrl_c_in_a_deferred_block_is_raised_when_the_block_ends():
    """What checkpoint.save runs in: the block finishes, then KeyboardInterrupt; the handler is restored."""
    before, finished = signal.getsignal(signal.SIGINT), []
    assert before is signal.default_int_handler, before  # no test before left a handler of its own behind
    with pytest.raises(KeyboardInterrupt):
        with files.interrupts_deferred():
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(0.01)  # the handler runs here, between two bytecodes: it only records
            finished.append(True)
    assert finished == [True] and signal.getsignal(signal.SIGINT) is before


def _step_names(directory: pathlib.Path) -> tuple[list[int], bool]:
    """The complete steps in a checkpoint directory and whether a save is in progress (cheap: a listing)."""
    try:
        names = [p.name for p in directory.iterdir()]
    except FileNotFoundError:
        return [], False
    return sorted(int(n) for n in names if n.isdigit()), any("orbax-checkpoint-tmp" in n for n in names)


def _interrupt(argv: list[str], directory: pathlib.Path, *, after: int, during_save: bool,
               delay: float = 0.0) -> tuple[int, str, list[int], int]:
    """Runs ``nnjax`` with ``argv``; once ``directory`` holds a step beyond ``after``, sends SIGINT when
    the next save is in progress (``during_save``) or ``delay`` seconds later. Returns the exit code,
    stderr, the complete steps seen just before the signal and the process's peak memory by then
    (kB, 0 where /proc does not say)."""
    proc = subprocess.Popen([sys.executable, "-m", "nnjax", *argv], env=ENV, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline and proc.poll() is None:
            steps, saving = _step_names(directory)
            if steps and steps[-1] > after and (saving or not during_save):
                break
            time.sleep(0.0005)
        time.sleep(delay)
        seen = _step_names(directory)[0]
        peak = _peak_memory_kb(proc.pid)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=120)
    finally:
        proc.kill()
    return proc.returncode, err, seen, peak


def _peak_memory_kb(pid: int) -> int:
    try:
        status = pathlib.Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0
    return next((int(line.split()[1]) for line in status.splitlines() if line.startswith("VmHWM:")), 0)


@pytest.mark.slow
def test_sigint_at_random_moments_and_during_a_save_loses_nothing_and_resumes_bit_for_bit(run20, tmp_path, rng):
    """A real ``nnjax train`` interrupted (Ctrl-C) while a checkpoint is being written, then its
    resume interrupted at a random moment: each exits 130 with one line, keeps every complete
    checkpoint intact, and the last resume ends bit for bit where the uninterrupted run20 does.
    The first run asks for 10^9 epochs: nothing is planned or allocated for epochs not yet run, so
    it holds no more memory than its resume with --epochs 20 (issue 24: a list of 10^8 chunks)."""
    out = tmp_path / "run"
    ckpt = out / "checkpoints"
    fresh = ["train", *XOR, "--epochs", "1000000000", "--checkpoint-every", "1", "--out", str(out)]
    resume = ["train", "--resume", str(out), "--epochs", "20", "--checkpoint-every", "1", "--quiet"]
    peaks = []
    # a save takes some 0.05 s here: its orbax threads were still writing when Ctrl-C came 5-40 ms in
    moments = [(fresh, True, float(rng.uniform(0.0, 0.05))), (resume, False, float(rng.uniform(0.0, 0.2)))]
    for argv, during_save, delay in moments:
        before = _step_names(ckpt)[0]
        code, err, seen, peak = _interrupt(argv, ckpt, after=max(before, default=0), during_save=during_save,
                                           delay=delay)
        peaks.append(peak)
        print("interrupted after", seen, f"{delay:.3f} s after", "a save began" if during_save else "a step",
              f"peak memory {peak / 1024:.0f} MB")
        assert code == 130 and err == f"nnjax: interrupted; continue with: nnjax train --resume {out}\n", (code, err)
        kept = checkpoint.steps(ckpt)
        assert kept[-1] >= seen[-1] and checkpoint.intact_steps(ckpt) == kept  # nothing complete lost
        assert _leftovers(out) == []  # the save Ctrl-C came in finished first
        assert kept[-1] < 20 and not (out / files.LOCK).exists()
    assert peaks[0] <= 1.25 * peaks[1], peaks  # 10^9 epochs asked, a few run: the memory of a short run
    assert main(["train", "--resume", str(out), "--quiet"]) == 0
    for mine, theirs in zip(_final_arrays(out), _final_arrays(run20), strict=True):
        np.testing.assert_array_equal(mine, theirs)


def test_a_checkpoint_holds_only_its_own_epochs_and_the_history_resumes_whole(run20, run_copy, capsys):
    """Issue 24: checkpoints no longer grow with the epochs run. Each holds the history since the one
    before; RUN/history/<epoch>.npz holds each checkpoint's epochs, chained by SHA-256 back to epoch 0."""
    ckpt = run20 / "checkpoints"
    assert checkpoint.steps(ckpt) == [10, 20]
    assert np.shape(checkpoint.restore(ckpt)["history"]["loss"]) == (10,)  # epochs 10-19 only, not 0-19
    assert sorted(p.name for p in (run20 / "history").iterdir()) == ["10.npz", "20.npz"]
    whole = run_history.whole(run20, checkpoint.restore(ckpt)["history"], checkpoint.restore_metadata(ckpt))
    written = json.loads((run20 / "history.json").read_text())
    np.testing.assert_array_equal(whole["loss"], np.asarray(written["loss"], np.float32))
    np.testing.assert_array_equal(whole["epoch"], np.arange(20))

    # Killed between checkpoint 20 and its segment: the resume writes the segment again, the same.
    segment = run_copy / "history" / "20.npz"
    before = dict(np.load(segment))
    segment.unlink()
    assert main(["train", "--resume", str(run_copy), "--epochs", "30", "--quiet"]) == 0
    for name, array in np.load(segment).items():
        np.testing.assert_array_equal(array, before[name])
    resumed = json.loads((run_copy / "history.json").read_text())
    assert resumed["loss"][:20] == written["loss"] and len(resumed["loss"]) == 30

    # A damaged segment stops the resume before anything is written, naming the file.
    (run_copy / "history" / "10.npz").write_bytes(b"not a segment")
    unchanged = _snapshot(run_copy)
    code = main(["train", "--resume", str(run_copy), "--epochs", "40", "--quiet"])
    _one_line(code, capsys.readouterr().err, f"--resume: history: segment {run_copy / 'history' / '10.npz'} is damaged")
    assert _snapshot(run_copy) == unchanged


def test_resume_without_checkpoints_says_so(run_copy, capsys):
    shutil.rmtree(run_copy / "checkpoints")
    code = main(["train", "--resume", str(run_copy), "--quiet"])
    err = capsys.readouterr().err
    assert code == 0 and "holds no checkpoint; training from epoch 0" in err, err
    assert checkpoint.latest_step(run_copy / "checkpoints") == 20


def test_checkpoint_save_refuses_max_to_keep_zero(run20, tmp_path):
    result = checkpoint.restore(run20 / "checkpoints")
    for bad in (0, -1, 1.5, True):
        with pytest.raises(ValueError, match="max_to_keep: expected an integer >= 1 or None"):
            checkpoint.save(tmp_path, result, max_to_keep=bad)
    assert not tmp_path.exists() or checkpoint.steps(tmp_path) == []


# ----------------------------------------------------------------------------------------------
# Messages that name the culprit


def test_a_csv_that_is_not_utf8_is_named(tmp_path, capsys):
    path = tmp_path / "latin.csv"
    path.write_bytes("a,b,label\n1,2,caf\u00e9\n3,4,x\n".encode("latin-1"))
    code = main(["train", "--data", str(path), "--target", "label", *XOR[2:], "--out", str(tmp_path / "run")])
    _one_line(code, capsys.readouterr().err, f"{path}: expected UTF-8 text, got the byte 0xe9")
    assert not (tmp_path / "run").exists()


def test_a_damaged_preprocessing_file_is_named(run_copy, rows, capsys):
    import json

    prep = json.loads((run_copy / "preprocessing.json").read_text())
    prep["mean"] = prep["mean"][:1]
    (run_copy / "preprocessing.json").write_text(json.dumps(prep))
    for command in (["predict", str(run_copy), "--data", str(rows)], ["evaluate", str(run_copy), "--dataset", "xor"]):
        _one_line(main(command), capsys.readouterr().err, "preprocessing.json", "mean has 1 values for 2 features")


def test_a_population_without_a_valid_best_member_is_refused_not_guessed(tmp_path, capsys):
    import json

    run = tmp_path / "population"
    assert main(["train", *XOR, "--epochs", "2", "--seeds", "2", "--out", str(run)]) == 0
    metrics = json.loads((run / "metrics.json").read_text())
    (run / "metrics.json").write_text(json.dumps({**metrics, "best_member": 5}))
    _one_line(main(["evaluate", str(run), "--dataset", "xor"]), capsys.readouterr().err,
              "metrics.json: expected best_member in [0, 2)", "got 5")
    (run / "metrics.json").unlink()
    _one_line(main(["evaluate", str(run), "--dataset", "xor"]), capsys.readouterr().err,
              "--member: expected a member in [0, 2)", "metrics.json", "missing")
    assert main(["evaluate", str(run), "--dataset", "xor", "--member", "1"]) == 0


def test_a_read_only_compilation_cache_is_one_line(tmp_path, monkeypatch, capsys):
    from nnjax._base import cache

    def read_only(*args, **kwargs):
        raise OSError(errno.EROFS, os.strerror(errno.EROFS))

    monkeypatch.setattr(cache.tempfile, "TemporaryFile", read_only)
    monkeypatch.setattr(cache, "_done", False)
    monkeypatch.setenv("NNJAX_CACHE_DIR", str(tmp_path / "cache"))
    assert cache.enabled_directory() is None
    try:
        assert cache.enable_default() is None  # off, not half on
    finally:
        jax.config.update("jax_compilation_cache_dir", None)
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "compilation cache off" in err and "Read-only file system" in err, err


def test_tensorboard_leaves_out_nan_scalars_without_a_word(tmp_path, capfd):
    pytest.importorskip("tensorboardX")
    from nnjax.report.tensorboard import Writer

    history = {"epoch": np.array([1, 2], np.int32), "loss": np.array([0.5, np.nan], np.float32),
               "saturation": np.array([[np.nan, 0.25], [np.nan, 0.5]], np.float32)}
    with Writer(tmp_path) as writer:
        writer.write_history(history)
    assert capfd.readouterr().err == ""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(tmp_path)).Reload()
    assert sorted(events.Tags()["scalars"]) == ["loss", "saturation/1"]
    assert [e.value for e in events.Scalars("loss")] == [0.5]


# ----------------------------------------------------------------------------------------------
# Promises the docs make


def test_no_plots_is_remembered_by_resume(tmp_path, capsys):
    pytest.importorskip("matplotlib")
    out = tmp_path / "run"
    assert main(["train", *XOR, "--epochs", "2", "--out", str(out)]) == 0
    assert main(["train", "--resume", str(out), "--epochs", "4", "--quiet"]) == 0
    assert checkpoint.latest_step(out / "checkpoints") == 4 and not list(out.glob("*.png"))


def test_load_refuses_a_model_of_your_own_by_name(tmp_path):
    import nnjax

    model = nnjax.Model(lambda key: {"w": jax.random.normal(key, (2, 3))}, lambda p, s, x, **kw: (x @ p["w"], s))
    x, y = np.ones((4, 2), np.float32), np.arange(4) % 3
    result = nnjax.fit(jax.random.key(0), model, (x, y), loss="softmax_cross_entropy", optimizer="sgd", epochs=1,
                       batch_size=4)
    checkpoint.save(tmp_path, result)
    with pytest.raises(ValueError, match=r"net: expected an nnjax.MLP .* got Model; .*nnjax.checkpoint.restore"):
        nnjax.load(tmp_path, net=model)
    back = checkpoint.restore(tmp_path, like=result)  # what the message offers works
    np.testing.assert_array_equal(back.params["w"], result.params["w"])
