"""Smoke test of the benchmark suite: it runs, and what it writes is sane (not how fast anything is)."""

import importlib.util
import json
import math
import os
import pathlib
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks import first_call, flops, step_ops, workloads  # noqa: E402

# The library each peer module needs; a module whose library is installed must show up in the run.
PEER_LIBRARIES = {
    "nnjax_peer": "nnjax", "handwritten_scan": "jax", "jit_step_loop": "jax", "flax_linen_peer": "flax",
    "flax_nnx_peer": "flax", "equinox_peer": "equinox", "torch_peer": "torch", "sklearn_peer": "sklearn",
}
QUICK_WORKLOADS = ("w5", "w4")  # every peer module runs in one of these; W1 and W2 add no code path but cost
QUICK_REPEATS = 1  # each repetition is a steady and a fresh-objects run per peer; one keeps the smoke test short
# --quick times first calls in fresh processes for these rows only (the ones the ratios need)
FIRST_CALL_ROWS = {"w5": {"nnjax.fit", "hand-written lax.scan"}, "w4": {"nnjax.fit_population", "hand-written lax.scan"}}


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("bench")
    env = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"}
    # A smoke test checks that things run, not their speed: cheaper XLA compilation keeps it short.
    env["XLA_FLAGS"] = "--xla_backend_optimization_level=0 --xla_llvm_disable_expensive_passes=true"
    env["JAX_PLATFORMS"] = "cpu"
    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks.run", "--quick", "--repeats", str(QUICK_REPEATS),
         "--workloads", ",".join(QUICK_WORKLOADS), "--out", str(out)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300,
    )
    print(proc.stdout[-3000:], proc.stderr[-3000:])
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads((out / "results.json").read_text())
    return report, (out / "results.md").read_text(), proc.stdout


def test_every_installed_peer_has_a_row_per_workload(quick_run):
    report, markdown, _ = quick_run
    installed = {m for m, lib in PEER_LIBRARIES.items() if importlib.util.find_spec(lib) is not None}
    planned_modules = {p["module"] for p in report["planned"]}
    assert installed <= planned_modules, f"missing peer modules: {installed - planned_modules}"
    assert {s["module"] for s in report["skipped"]} == set(PEER_LIBRARIES) - installed
    assert set(report["workloads"]) == set(QUICK_WORKLOADS)
    got = {(r["workload"], r["peer"]) for r in report["results"]}
    assert got == {(p["workload"], p["peer"]) for p in report["planned"]}
    for workload in QUICK_WORKLOADS:
        modules = {p["module"] for p in report["planned"] if p["workload"] == workload}
        assert "nnjax_peer" in modules and "handwritten_scan" in modules
    for peer in {p for _, p in got}:
        assert f"| {peer} |" in markdown, peer


def test_numbers_are_sane(quick_run):
    report, _, _ = quick_run
    for row in report["results"]:
        assert "error" not in row, row
        assert len(row["times_s"]) == report["protocol"]["repeats"]
        for value in row["times_s"] + [row["median_s"], row["first_run_s"], row["ms_per_epoch"], row["gflops"]]:
            assert math.isfinite(value) and value > 0, row
        assert row["min_s"] <= row["median_s"] <= row["max_s"]
        assert row["compile_s"] >= 0
        if row["family"] != "reference":
            assert 0.0 <= row["test_accuracy"] <= 1.0, row
    for target in report["targets"]:
        assert math.isfinite(target["measured"]), target
    machine = report["machine"]
    assert machine["cores"] >= 1 and machine["cpu"] and machine["versions"]["jax"] == jax.__version__
    assert machine["accelerator"] and machine["device_kind"] and machine["backend"] == jax.default_backend()


def test_fresh_object_repeats_are_timed_and_their_compiles_counted(quick_run):
    report, markdown, _ = quick_run
    for row in report["results"]:
        assert len(row["fresh_times_s"]) == report["protocol"]["repeats"], row["peer"]
        assert all(math.isfinite(t) and t > 0 for t in row["fresh_times_s"]), row
        assert row["fresh_min_s"] <= row["fresh_median_s"] <= row["fresh_max_s"]
        assert row["fresh_objects"], row["peer"]  # what a fresh call rebuilds, said in the report
        for kind in ("compiles_first_in_process", "compiles_steady", "compiles_fresh"):
            assert row[kind]["compiles"] >= 0 and row[kind]["compile_s"] >= 0, (row["peer"], kind)
    scans = [r for r in report["results"] if r["peer"] == "hand-written lax.scan"]
    for row in scans:  # the benchmark's own jitted run compiles once and is then reused
        assert row["compiles_first_in_process"]["compiles"] >= 1
        assert row["compiles_steady"]["max_compiles"] == 0 and row["compiles_fresh"]["max_compiles"] == 0
    for header in ("first call s", "fresh objects s", "steady ms/epoch", "x scan", "compiles, first call",
                   "compiles, fresh repeat"):
        assert header in markdown, header


def test_first_calls_ran_in_fresh_processes_with_the_cache_off(quick_run):
    report, _, _ = quick_run
    assert report["protocol"]["first_call"] == "cold"
    for row in report["results"]:
        if row["peer"] not in FIRST_CALL_ROWS[row["workload"]]:
            assert "first_call" not in row, row["peer"]
            continue
        cold = row["first_call"]["cold"]
        assert "error" not in cold, cold
        assert math.isfinite(cold["median_s"]) and cold["median_s"] > 0
        assert cold["compiles"] >= 1 and cold["cache_hits"] == 0 and not cold["cache_enabled"], cold
        (child,) = cold["runs"]
        assert child["peer"] == row["peer"] and child["cache"]["requested"] == "off"
        assert child["cache"]["before"]["nnjax_cache_dir"] == "off"


def test_step_ops_counted_for_the_tiny_workload(quick_run):
    report, markdown, _ = quick_run
    counts = report["step_ops"]["w5"]
    assert all(c["ops"] > 0 for c in counts.values())
    # a program that does strictly more per step (diagnostics) never compiles to fewer operations
    assert counts["nnjax.fit"]["ops"] >= counts["nnjax.fit (no diagnostics)"]["ops"]
    assert "XLA operations per minibatch step" in markdown


def test_flop_count_matches_xla_cost_analysis(rng):
    """The formula in train_flops against XLA's own count for the dot chain of one batch."""
    sizes, batch = (7, 5, 3, 2), 4
    weights = tuple(jnp.asarray(rng.standard_normal((a, b)), jnp.float32) for a, b in zip(sizes[:-1], sizes[1:]))
    x = jnp.asarray(rng.standard_normal((batch, sizes[0])), jnp.float32)
    cost = jax.jit(flops.dot_chain).lower(weights, x).compile().cost_analysis()
    cost = cost[0] if isinstance(cost, list) else cost
    fake = workloads.Workload(
        key="t", title="t", sizes=sizes, activation="relu", loss="softmax_cross_entropy", batch_size=batch,
        learning_rate=0.1, epochs=1, x_train=np.zeros((batch, sizes[0]), np.float32),
        y_train=np.zeros(batch, np.int32), x_test=None, y_test=None, init_params=((),), seeds=(0,),
    )
    assert workloads.train_flops(fake) == pytest.approx(cost["flops"], rel=0.05)


def test_dot_chain_gradients_have_the_weight_shapes(rng):
    sizes = (6, 4, 3)
    weights = tuple(jnp.asarray(rng.standard_normal((a, b)), jnp.float32) for a, b in zip(sizes[:-1], sizes[1:]))
    x = jnp.asarray(rng.standard_normal((5, 6)), jnp.float32)
    grads = flops.dot_chain(weights, x)
    assert [g.shape for g in grads] == [w.shape for w in weights]
    # last layer: h1.T @ (h1 @ W2), computed independently in float64
    h1 = np.asarray(x, np.float64) @ np.asarray(weights[0], np.float64)
    np.testing.assert_allclose(grads[1], h1.T @ (h1 @ np.asarray(weights[1], np.float64)), rtol=1e-4)


def test_inner_loop_ops_reads_the_innermost_loop():
    hlo = "\n".join([
        "%inner (p: f32[]) -> f32[] {", "  %a = f32[] add(%p, %p)", "  %b = f32[] multiply(%a, %a)",
        "  ROOT %t = (f32[]) tuple(%b)", "}",
        "%outer (p: f32[]) -> f32[] {", "  %w = f32[] while(%p), condition=%c, body=%inner", "}",
        "ENTRY %main (p: f32[]) -> f32[] {", "  ROOT %w2 = f32[] while(%p), condition=%c2, body=%outer", "}",
    ])
    assert step_ops.inner_loop_ops(hlo) == {"ops": 2, "by_kind": {"add": 1, "multiply": 1}}


def test_cli_latency_times_fresh_processes_and_reads_their_summaries(tmp_path):
    from benchmarks import cli_latency

    report = cli_latency.main(["--rounds", "1", "--train-args", "--epochs 1 --no-plots --hidden 8",
                               "--json", str(tmp_path / "cli.json")])
    assert json.loads((tmp_path / "cli.json").read_text())["rounds"] == 1
    assert report["train_args"] == ["--epochs", "1", "--no-plots", "--hidden", "8"]
    for kind, values in report["wall_s"].items():
        assert len(values) == 1 and math.isfinite(values[0]) and values[0] > 0, kind
    for kind, values in report["train_seconds"].items():
        assert 0 < values[0] < report["wall_s"][kind][0], kind  # training is part of the process's time


@pytest.mark.slow  # compiles every row once / starts a fresh process
def test_decompose_times_every_row_and_the_population_table(tmp_path):
    from benchmarks import decompose

    report = decompose.main(["--quick", "--workloads", "w5", "--rounds", "1", "--json", str(tmp_path / "d.json")])
    assert json.loads((tmp_path / "d.json").read_text())["rounds"] == 1
    rows = report["workloads"]["w5"]["rows"]
    assert {"hand-written scan", "nnjax.fit (NumPy data)", "nnjax Plan.run (data on device)"} <= set(rows)
    assert {"+ " + f for f in decompose.FEATURES} <= set(rows)
    assert rows["hand-written scan"]["over_scan"] == 1.0
    for name, row in rows.items():
        assert math.isfinite(row["median_s"]) and row["median_s"] > 0, name
    (pop,) = report["population"]
    assert pop["members"] == 4 and all(pop[k] > 0 for k in ("vmap", "fit_population", "loop"))


def test_build_up_with_every_feature_learns_like_the_plain_scan():
    from benchmarks import decompose

    w = workloads.build("w5", quick=True)
    start = tuple((jnp.asarray(layer["w"]), jnp.asarray(layer["b"])) for layer in w.init_params[0])
    x, y = jnp.asarray(w.x_train), jnp.asarray(w.y_train)
    features = tuple(f for f in decompose.FEATURES if f != "host preparation")
    _, history = jax.jit(decompose.build_up(w, features))(start, x, y, jax.random.key(0))
    _, plain = jax.jit(decompose.build_up(w, ()))(start, x, y, jax.random.key(0))
    # the added features observe the run, they do not change it
    np.testing.assert_allclose(history["loss"], plain["loss"], rtol=1e-5)
    assert history["layer_grad_norm"].shape == (w.epochs, len(w.sizes) - 1)
    assert np.all(np.asarray(history["skipped"]) == 0) and np.all(np.isfinite(history["val_loss"]))


@pytest.mark.slow  # compiles every row once / starts a fresh process
def test_memory_reports_peak_rss_per_size_from_fresh_processes(tmp_path):
    from benchmarks import memory

    report = memory.main(["--sizes", "20000", "--json", str(tmp_path / "m.json")])
    plain, aligned = report["rows"]
    for row in (plain, aligned):
        assert "error" not in row, row
        assert row["data_bytes"] == 20000 * (memory.FEATURES + 1) * 4
        assert row["peak_rss_bytes"] > row["base_rss_bytes"] > 0 and row["us_per_row_epoch"] > 0
        assert math.isfinite(row["final_loss"])
    assert not plain["aligned"] and aligned["aligned"]
