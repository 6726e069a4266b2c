"""Checkpoints that prove themselves: every kind of damage is refused by the library and the CLI.

A tiny run (xor, 4 epochs, checkpoints at 2 and 4) is trained once; each test damages a copy of
its newest checkpoint in one way and checks that nothing uses it: ``checkpoint.restore`` raises
``CheckpointError`` naming the step and the intact step 2, the CLI prints one line and exits 2
without changing a file of the run, and ``--resume --from-intact`` carries on from step 2.
"""

import json
import os
import pathlib
import re
import shutil
import subprocess
import sys

import jax
import numpy as np
import pytest

from nnjax import checkpoint
from nnjax.io import integrity as _checkpoint_integrity
from nnjax.cli import main

TINY = ["--dataset", "xor", "--hidden", "4", "--epochs", "4", "--checkpoint-every", "2", "--batch-size", "16"]


def _largest_array_file(step_dir):
    files = [p for p in (step_dir / "arrays").rglob("*") if p.is_file() and p.parent.name == "d"]
    return max(files, key=lambda p: p.stat().st_size)


def _flip(step_dir, rng):
    path = _largest_array_file(step_dir)
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))


def _truncate(step_dir, rng):
    path = _largest_array_file(step_dir)
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def _delete(step_dir, rng):
    _largest_array_file(step_dir).unlink()


def _zero_manifest(step_dir, rng):
    path = step_dir / "arrays" / "manifest.ocdbt"
    path.write_bytes(bytes(path.stat().st_size))


def _random_bytes(step_dir, rng):
    path = _largest_array_file(step_dir)
    path.write_bytes(rng.integers(0, 256, path.stat().st_size, dtype=np.uint8).tobytes())


DAMAGE = {  # kind: (damage, what the error says is wrong)
    "bit flip": (_flip, r"file arrays/\S+/d/\w+: checksum mismatch"),
    "truncation": (_truncate, r"file arrays/\S+/d/\w+: expected (\d+) bytes, got \d+"),
    "deleted file": (_delete, r"file arrays/\S+/d/\w+: missing"),
    "zeroed manifest": (_zero_manifest, r"file arrays/manifest.ocdbt: checksum mismatch"),
    "random bytes": (_random_bytes, r"file arrays/\S+/d/\w+: checksum mismatch"),
}


def run(capsys, *argv):
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def snapshot(run_dir):
    """Every file of a run with its bytes: what a failed command must leave as it was."""
    return {p.relative_to(run_dir).as_posix(): p.read_bytes() for p in sorted(run_dir.rglob("*")) if p.is_file()}


def leaves(tree):
    out = {}
    for path, leaf in jax.tree_util.tree_flatten_with_path(tree)[0]:
        if jax.dtypes.issubdtype(leaf.dtype, jax.dtypes.prng_key):
            leaf = jax.random.key_data(leaf)
        out[jax.tree_util.keystr(path)] = np.asarray(leaf).tobytes()
    return out


@pytest.fixture(scope="module")
def intact_run(tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("integrity") / "run"
    assert main(["train", *TINY, "--out", str(run_dir), "--quiet", "--no-plots"]) == 0
    assert checkpoint.steps(run_dir / "checkpoints") == [2, 4]
    return run_dir


@pytest.fixture(params=sorted(DAMAGE))
def damaged(request, intact_run, tmp_path, rng):
    """A copy of the run whose step 4 is damaged in one way; (run directory, the reason's pattern)."""
    run_dir = tmp_path / "run"
    shutil.copytree(intact_run, run_dir)
    damage, reason = DAMAGE[request.param]
    damage(run_dir / "checkpoints" / "4", rng)
    return run_dir, reason


def test_the_library_refuses_every_damage(damaged):
    run_dir, reason = damaged
    ckpt = run_dir / "checkpoints"
    step_dir = (ckpt / "4").absolute()
    for read in (checkpoint.restore, checkpoint.restore_metadata):
        with pytest.raises(checkpoint.CheckpointError, match=reason) as caught:
            read(ckpt)
        message = str(caught.value)
        assert "\n" not in message and message.startswith(f"checkpoint {step_dir} is damaged: ")
        assert message.endswith(f"the newest intact checkpoint is {ckpt.absolute() / '2'}")
        assert caught.value.step_dir == step_dir and caught.value.intact_step == 2
        assert isinstance(caught.value, ValueError)
    assert checkpoint.intact_steps(ckpt) == [2] and checkpoint.latest_intact_step(ckpt) == 2
    assert checkpoint.restore_metadata(ckpt, step=2)["epochs_done"] == 2


def test_the_cli_refuses_every_damage_in_one_line_and_changes_nothing(damaged, capsys):
    run_dir, reason = damaged
    before = snapshot(run_dir)
    for argv in (["evaluate", str(run_dir)], ["train", "--resume", str(run_dir), "--quiet"],
                 ["train", "--resume", str(run_dir), "--epochs", "6", "--quiet"]):
        code, out, err = run(capsys, *argv)
        assert code == 2 and out == ""
        lines = err.strip().splitlines()
        assert len(lines) == 1, err
        assert lines[0].startswith("nnjax: error: ") and f"{run_dir.absolute() / 'checkpoints' / '4'} is damaged" in err
        assert re.search(reason, err) and "newest intact checkpoint is" in err
        if argv[0] == "train":
            assert err.rstrip().endswith(f"--resume {run_dir} --from-intact")
    assert snapshot(run_dir) == before  # config.json included, byte for byte


def test_from_intact_resumes_from_the_older_step_bit_for_bit(damaged, intact_run, capsys):
    run_dir, _ = damaged
    code, out, err = run(capsys, "train", "--resume", str(run_dir), "--from-intact", "--quiet")
    assert code == 0 and out == ""
    assert "is damaged" in err and "continuing from" in err and err.strip().endswith("2")
    assert checkpoint.steps(run_dir / "checkpoints") == [2, 4]
    assert checkpoint.intact_steps(run_dir / "checkpoints") == [2, 4]
    assert (run_dir / "damaged_checkpoints" / "4").is_dir()  # set aside, not deleted
    assert leaves(checkpoint.restore(run_dir / "checkpoints")) == leaves(checkpoint.restore(intact_run / "checkpoints"))
    assert json.loads((run_dir / "metrics.json").read_text())["epochs_run"] == 4


def test_no_intact_step_left(intact_run, tmp_path, capsys, rng):
    run_dir = tmp_path / "run"
    shutil.copytree(intact_run, run_dir)
    for step in ("2", "4"):
        _flip(run_dir / "checkpoints" / step, rng)
    before = snapshot(run_dir)
    with pytest.raises(checkpoint.CheckpointError, match="no intact checkpoint is left in"):
        checkpoint.restore(run_dir / "checkpoints")
    assert checkpoint.intact_steps(run_dir / "checkpoints") == []
    for extra in ([], ["--from-intact"]):
        code, _, err = run(capsys, "train", "--resume", str(run_dir), *extra, "--quiet")
        assert code == 2 and len(err.strip().splitlines()) == 1
        assert "no intact checkpoint is left" in err and "start a new run" in err
    assert snapshot(run_dir) == before


def test_from_intact_needs_resume(tmp_path, capsys):
    code, _, err = run(capsys, "train", *TINY, "--out", str(tmp_path / "x"), "--from-intact")
    assert code == 2 and "--from-intact: expected it with --resume DIR" in err
    assert not (tmp_path / "x").exists()


TREE = {"params": [{"w": np.arange(12, dtype=np.float32).reshape(3, 4), "b": np.zeros(4, np.float32)}],
        "count": np.int32(7), "none_yet": np.zeros((2, 0), np.float32)}


def test_array_digests_check_what_was_decoded(tmp_path):
    # The file record is rewritten to match a changed array record: only the arrays' digests can tell.
    checkpoint.save(tmp_path, TREE, step=1)
    checkpoint.save(tmp_path, TREE, step=2, metadata={"note": "x"})
    record_file = next((tmp_path / "2" / "integrity").iterdir())
    record = json.loads(record_file.read_text())
    assert sorted(record["arrays"]) == ["count", "none_yet", "params/0/b", "params/0/w"]
    record["arrays"]["params/0/w"] = _checkpoint_integrity.array_digests({"w": TREE["params"][0]["w"] + 1})["w"]
    record_file.write_text(json.dumps(record))
    _checkpoint_integrity.write_file_record(tmp_path / "2")
    with pytest.raises(checkpoint.CheckpointError, match=r"array params/0/w: checksum mismatch; .* is \S+/1$"):
        checkpoint.restore(tmp_path)
    assert checkpoint.restore_metadata(tmp_path, step=2) == {"note": "x"}  # its own digest still matches


def test_steps_without_records_restore_unchecked_and_storage_errors_become_checkpoint_errors(tmp_path):
    checkpoint.save(tmp_path, TREE, step=1)
    step_dir = tmp_path / "1"
    shutil.rmtree(step_dir / "integrity")
    (step_dir / "nnjax_files.json").unlink()  # as written before the records existed
    back = checkpoint.restore(tmp_path, like=TREE)
    np.testing.assert_array_equal(back["params"][0]["w"], TREE["params"][0]["w"])
    assert back["none_yet"].shape == (2, 0)
    _zero_manifest(step_dir, None)  # now only the storage layer can tell
    with pytest.raises(checkpoint.CheckpointError, match=r"1 is damaged: array \S+: unreadable manifest; no intact"):
        checkpoint.restore(tmp_path)


def test_a_deleted_file_record_is_damage_not_an_old_step(tmp_path):
    checkpoint.save(tmp_path, TREE, step=3)
    (tmp_path / "3" / "nnjax_files.json").unlink()
    with pytest.raises(checkpoint.CheckpointError, match="file nnjax_files.json: missing"):
        checkpoint.restore(tmp_path)
    (tmp_path / "3" / "nnjax_files.json").write_text("{not json")
    with pytest.raises(checkpoint.CheckpointError, match="file nnjax_files.json: unreadable manifest"):
        checkpoint.restore_metadata(tmp_path)


def test_the_next_save_removes_stale_temporary_folders(tmp_path):
    checkpoint.save(tmp_path, TREE, step=1)
    stale = tmp_path / "2.orbax-checkpoint-tmp-1234567890"
    (stale / "arrays").mkdir(parents=True)
    (stale / "arrays" / "half-written").write_bytes(b"\0" * 10)
    assert checkpoint.steps(tmp_path) == [1] and stale.is_dir()  # reading leaves it alone
    checkpoint.save(tmp_path, TREE, step=2)
    assert not stale.exists()
    assert checkpoint.intact_steps(tmp_path) == [1, 2]


def test_a_storage_error_in_a_whole_run_is_one_line_without_asyncio_reports(intact_run, tmp_path):
    # A step without records whose manifest is zeroed: the storage layer fails while other reads
    # are still in flight, whose callbacks used to print "Event loop is closed" tracebacks.
    run_dir = tmp_path / "run"
    shutil.copytree(intact_run, run_dir)
    step_dir = run_dir / "checkpoints" / "4"
    shutil.rmtree(step_dir / "integrity")
    (step_dir / "nnjax_files.json").unlink()
    _zero_manifest(step_dir, None)
    env = dict(os.environ, PYTHONPATH=str(pathlib.Path(__file__).resolve().parents[1]), JAX_PLATFORMS="cpu")
    script = "import sys; from nnjax.cli import main; sys.exit(main(sys.argv[1:]))"
    proc = subprocess.run([sys.executable, "-c", script, "evaluate", str(run_dir)], env=env, capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 2, proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert "4 is damaged: array" in proc.stderr and "unreadable manifest" in proc.stderr
    assert "newest intact checkpoint is" in proc.stderr
