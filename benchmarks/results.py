"""Results: the machine, the issue's targets checked against measured ratios, JSON and a Markdown table."""

from __future__ import annotations

import datetime
import importlib.metadata
import json
import math
import os
import pathlib
import platform
import subprocess

import jax

__all__ = ["REFERENCE", "SCAN", "machine", "machine_line", "markdown", "targets", "write"]

#: The row every other row of a workload is compared with.
REFERENCE = {"w4": "nnjax.fit_population"}
_DEFAULT_REFERENCE = "nnjax.fit"
#: The row the table's ratio column divides by: the best hand-written whole-run program.
SCAN = "hand-written lax.scan"
#: Families whose compilations JAX's monitoring events can see.
_JAX_FAMILIES = {"nnjax", "scan", "jit-step", "reference"}


def _cpu_model() -> str:
    try:
        for line in pathlib.Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _version(package: str) -> str | None:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return None


def _git_state() -> str | None:
    """The commit measured, with "+dirty" when the working tree has changes."""
    root = pathlib.Path(__file__).resolve().parent.parent
    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=root, capture_output=True, text=True,
                                timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=root,
                               capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return (commit + ("+dirty" if dirty else "")) or None


def machine() -> dict:
    """Where the numbers come from: CPU, cores, accelerator, load, library versions, the commit."""
    devices = jax.devices()
    backend = jax.default_backend()
    return {
        "git": _git_state(),
        "cpu": _cpu_model(),
        "cores": os.cpu_count(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "backend": backend,
        "accelerator": "GPU" if backend in ("gpu", "cuda", "rocm") else backend.upper(),
        "device_kind": devices[0].device_kind if devices else None,
        "device_count": len(devices),
        "devices": [str(d) for d in devices],
        "load_average": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
        "date_utc": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "versions": {p: _version(p) for p in ("jax", "jaxlib", "optax", "flax", "equinox", "torch", "scikit-learn", "numpy")},
    }


def _rows(report: dict, workload: str) -> dict[str, dict]:
    return {r["peer"]: r for r in report["results"] if r["workload"] == workload and "error" not in r}


def _ratio(report: dict, workload: str, slow: str | list[str], fast: str) -> tuple[float, str] | None:
    """``median(slow) / median(fast)``; with a list, the fastest of ``slow`` (the hardest case)."""
    rows = _rows(report, workload)
    names = [slow] if isinstance(slow, str) else slow
    names = [n for n in names if n in rows]
    if not names or fast not in rows:
        return None
    best = min(names, key=lambda n: rows[n]["median_s"])
    return rows[best]["median_s"] / rows[fast]["median_s"], best


def targets(report: dict) -> list[dict]:
    """The issue's targets that this run can check: the measured value, the goal and whether it is met."""
    rows = {w: _rows(report, w) for w in ("w1", "w2", "w4", "w5")}
    family = {w: [n for n, r in rows[w].items() if r["family"] == "jit-step"] for w in rows}
    out = []

    def add(text: str, value, goal: str, met):
        if value is not None:
            out.append({"target": text, "measured": value, "goal": goal, "met": bool(met(value))})

    def ratio(workload, slow, fast):
        found = _ratio(report, workload, slow, fast)
        return None if found is None else found[0]

    fit, nodiag, scan = "nnjax.fit", "nnjax.fit (no diagnostics)", "hand-written lax.scan"
    for w in ("w1", "w5"):
        add(f"{w.upper()}: time of nnjax.fit / hand-written scan", ratio(w, fit, scan), "<= 1.05", lambda v: v <= 1.05)
        add(f"{w.upper()}: time of nnjax.fit (no diagnostics) / hand-written scan", ratio(w, nodiag, scan), "<= 1.05",
            lambda v: v <= 1.05)
    add("W1: Flax Linen jit-step loop / nnjax.fit", ratio("w1", "Flax Linen + optax, jit-step loop", fit), ">= 1.5",
        lambda v: v >= 1.5)
    torch_rows = [n for n in rows["w1"] if n.startswith("PyTorch")]
    add("W1: PyTorch eager / nnjax.fit", ratio("w1", torch_rows, fit), ">= 5", lambda v: v >= 5)
    add("W1: scikit-learn / nnjax.fit", ratio("w1", "scikit-learn MLPClassifier", fit), ">= 5", lambda v: v >= 5)
    add("W5: fastest jit-step loop / nnjax.fit", ratio("w5", family["w5"], fit), ">= 3.5", lambda v: v >= 3.5)
    add("W5: PyTorch eager / nnjax.fit", ratio("w5", [n for n in rows["w5"] if n.startswith("PyTorch")], fit), ">= 20",
        lambda v: v >= 20)
    dot = rows["w2"].get("jnp.dot alone (same shapes)")
    if dot and fit in rows["w2"]:
        add("W2: nnjax.fit GFLOP/s / jnp.dot GFLOP/s", rows["w2"][fit]["gflops"] / dot["gflops"], ">= 0.85",
            lambda v: v >= 0.85)
    add("W4: nnjax.fit_population / one nnjax.fit per member", ratio("w4", "nnjax.fit_population",
        "nnjax.fit, one call per member"), "<= 1", lambda v: v <= 1.0)
    add("W4: PyTorch one model at a time / nnjax.fit_population",
        ratio("w4", [n for n in rows["w4"] if n.startswith("PyTorch")], "nnjax.fit_population"), ">= 6", lambda v: v >= 6)
    if fit in rows["w1"]:
        add("W1: compile time of nnjax.fit (s)", rows["w1"][fit]["compile_s"], "< 1", lambda v: v < 1.0)

    def first_call(w, peer, kind="cold", field="median_s"):
        found = rows[w].get(peer, {}).get("first_call", {}).get(kind, {})
        return found.get(field)

    def fresh_ratio(w, slow, fast):
        names = [n for n in ([slow] if isinstance(slow, str) else slow) if rows[w].get(n, {}).get("fresh_median_s")]
        if not names or not rows[w].get(fast, {}).get("fresh_median_s"):
            return None
        return min(rows[w][n]["fresh_median_s"] for n in names) / rows[w][fast]["fresh_median_s"]

    for w, goal in (("w1", 1.0), ("w2", 2.5)):
        add(f"{w.upper()}: XLA compile s of nnjax.fit's first call (fresh process, counted)",
            first_call(w, fit, field="compile_s"), f"<= {goal}", lambda v, goal=goal: v <= goal)
    ours, theirs = first_call("w1", fit, field="compile_s"), first_call("w1", scan, field="compile_s")
    add("W1: XLA compile s of nnjax.fit's first call / the hand-written scan's",
        ours / theirs if ours is not None and theirs else None, "<= 1", lambda v: v <= 1.0)
    cold = first_call("w1", fit)
    repeat = rows["w1"].get(fit, {}).get("fresh_median_s")
    add("W1: nnjax.fit repeated with a fresh optimizer / its first call in a fresh process",
        repeat / cold if repeat and cold else None, "<= 0.1", lambda v: v <= 0.1)
    warm = first_call("w1", fit, "warm")
    add("W1: nnjax.fit first call, cache off / warm persistent cache", cold / warm if cold and warm else None,
        ">= 3", lambda v: v >= 3)
    add("W1: Flax Linen jit-step loop / nnjax.fit, fresh optimizer each call",
        fresh_ratio("w1", "Flax Linen + optax, jit-step loop", fit), ">= 1.5", lambda v: v >= 1.5)
    add("W1: PyTorch eager / nnjax.fit, fresh optimizer each call", fresh_ratio("w1", torch_rows, fit), ">= 5",
        lambda v: v >= 5)
    diag = ratio("w1", fit, nodiag)
    add("W1: diagnostics overhead (fit / fit without diagnostics - 1)", None if diag is None else diag - 1, "< 0.10",
        lambda v: v < 0.10)
    bar = ratio("w1", "nnjax.fit (progress bar)", fit)
    add("W1: progress bar overhead (fit with bar / fit - 1)", None if bar is None else bar - 1, "< 0.10",
        lambda v: v < 0.10)
    return out


def _fmt(value, digits: int = 3) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "-"
    return f"{value:.{digits}g}" if abs(value) < 1000 else f"{value:.0f}"


def machine_line(m: dict) -> str:
    """The machine and commit in one line, as printed at the start and under the tables."""
    v = m["versions"]
    load = ", ".join(f"{x:.1f}" for x in m["load_average"]) if m["load_average"] else "?"
    device = f"{m.get('accelerator', m['backend'].upper())} ({m.get('device_kind') or m['backend']}"
    device += f" x{m['device_count']})" if m.get("device_count", 1) > 1 else ")"
    return (f"{m['cpu']}, {m['cores']} cores, backend {m['backend']}, device {device}; jax {v['jax']}, "
            f"flax {v['flax']}, equinox {v['equinox'] or '-'}, torch {v['torch'] or '-'}, "
            f"scikit-learn {v['scikit-learn']}; load average at start {load}; commit {m.get('git') or '?'}; "
            f"{m['date_utc']}")


def _first_call(row: dict, kind: str) -> str:
    found = row.get("first_call", {}).get(kind)
    if not found:
        return "-"
    if "median_s" not in found:
        return "failed"
    return _fmt(found["median_s"])


def _compiles(row: dict) -> tuple[str, str]:
    """The compile-count cells: a first call (a fresh process when measured there) and a fresh repeat."""
    if row.get("family") not in _JAX_FAMILIES:
        return "-", "-"
    cold = row.get("first_call", {}).get("cold", {})
    first, mark = (cold, "") if "compiles" in cold else (row.get("compiles_first_in_process"), "*")
    first_cell = "-" if not first else f"{_fmt(first['compiles'])} ({_fmt(first['compile_s'], 2)} s){mark}"
    fresh = row.get("compiles_fresh")
    fresh_cell = "-" if not fresh else f"{_fmt(fresh['compiles'])} ({_fmt(fresh['compile_s'], 2)} s)"
    return first_cell, fresh_cell


def markdown(report: dict) -> str:
    """The results as Markdown: one table per workload, then the targets."""
    protocol = report["protocol"]
    warm = protocol.get("first_call") == "both"
    lines = [f"Machine: {machine_line(report['machine'])}.", "",
             "Columns: *first call*: the first training call in a fresh process (imports excluded, compilation "
             "included), persistent compilation cache off"
             + ("; *warm cache*: the same in a second fresh process that finds the first one's programs in a "
                "persistent cache" if warm else "")
             + f" (median of {protocol.get('process_repeats', 1)} process(es)); "
             "*fresh objects*: a repeated call in the same process with a freshly built, equal model and optimizer "
             f"(`optax.sgd(lr)` again), median of {protocol['repeats']}; *steady*: the same call with the same objects "
             f"again, median of {protocol['repeats']} timed runs after a cold run (min-max in brackets); "
             f"*x scan*: steady time over the {SCAN} row's; *compiles*: XLA backend compilations of the first call "
             "and of a fresh-objects repeat (count, seconds), for JAX-based rows (*: first call not run in a fresh process, "
             "counted in the suite's process instead, where earlier rows may have compiled shared helpers already). "
             "Peers take turns in rotating order.", ""]
    for key, info in report["workloads"].items():
        rows = [r for r in report["results"] if r["workload"] == key]
        per = "all members" if info["members"] > 1 else "one model"
        header = ["peer", "first call s"] + (["warm cache s"] if warm else []) + [
            "fresh objects s", f"steady ms/epoch ({per})", "x scan", "compiles, first call", "compiles, fresh repeat",
            "test accuracy", "GFLOP/s"]
        lines += [f"### {info['title']} ({info['epochs']} epochs, batch {info['batch_size']}, "
                  f"{info['n_train']} examples{', ' + str(info['members']) + ' members' if info['members'] > 1 else ''})",
                  "", "| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
        scan = next((r for r in rows if r["peer"] == SCAN and "error" not in r), None)
        for r in rows:
            if "error" in r:
                lines.append(f"| {r['peer']} | failed: {r['error'][:80]} |" + " |" * (len(header) - 2))
                continue
            rel = r["median_s"] / scan["median_s"] if scan else None
            first_compiles, fresh_compiles = _compiles(r)
            cells = [r["peer"], _first_call(r, "cold")] + ([_first_call(r, "warm")] if warm else []) + [
                "-" if r["family"] == "reference" else _fmt(r.get("fresh_median_s")),
                f"{_fmt(r['ms_per_epoch'])} ({_fmt(r['ms_per_epoch_min'])}-{_fmt(r['ms_per_epoch_max'])})",
                _fmt(rel), first_compiles, fresh_compiles, _fmt(r["test_accuracy"]), _fmt(r["gflops"])]
            lines.append("| " + " | ".join(cells) + " |")
        lines.append("")
    if report.get("step_ops"):
        lines += ["### XLA operations per minibatch step (compiled inner loop; load-independent)", "",
                  "| workload | " + " | ".join(next(iter(report["step_ops"].values()))) + " |",
                  "| --- |" + " --- |" * len(next(iter(report["step_ops"].values())))]
        for key, counts in report["step_ops"].items():
            lines.append(f"| {key.upper()} | " + " | ".join(str(c["ops"]) for c in counts.values()) + " |")
        lines.append("")
    if report.get("skipped"):
        lines += ["Not installed, skipped: " + "; ".join(f"{s['module']} ({s['reason']})" for s in report["skipped"]), ""]
    if report.get("targets"):
        lines += ["### Targets (from this run's ratios)", "", "| target | measured | goal | met |", "| --- | --- | --- | --- |"]
        lines += [f"| {t['target']} | {_fmt(t['measured'])} | {t['goal']} | {'yes' if t['met'] else 'no'} |"
                  for t in report["targets"]]
        lines.append("")
    return "\n".join(lines)


def write(report: dict, out_dir: str | os.PathLike) -> tuple[pathlib.Path, pathlib.Path]:
    """Writes ``results.json`` and ``results.md`` into ``out_dir``; returns their paths."""
    out = pathlib.Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    json_path, md_path = out / "results.json", out / "results.md"
    json_path.write_text(json.dumps(report, indent=1, allow_nan=False, default=_jsonable) + "\n")
    md_path.write_text(markdown(report) + "\n")
    return json_path, md_path


def _jsonable(value):
    try:
        return float(value)
    except (TypeError, ValueError):
        return str(value)
