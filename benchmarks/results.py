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

__all__ = ["REFERENCE", "machine", "markdown", "targets", "write"]

#: The row every other row of a workload is compared with.
REFERENCE = {"w4": "nnjax.fit_population"}
_DEFAULT_REFERENCE = "nnjax.fit"


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
    """Where the numbers come from: CPU, cores, load, library versions, the commit."""
    devices = jax.devices()
    return {
        "git": _git_state(),
        "cpu": _cpu_model(),
        "cores": os.cpu_count(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "backend": jax.default_backend(),
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


def _machine_line(m: dict) -> str:
    v = m["versions"]
    load = ", ".join(f"{x:.1f}" for x in m["load_average"]) if m["load_average"] else "?"
    return (f"{m['cpu']}, {m['cores']} cores, backend {m['backend']}; jax {v['jax']}, flax {v['flax']}, "
            f"equinox {v['equinox'] or '-'}, torch {v['torch'] or '-'}, scikit-learn {v['scikit-learn']}; "
            f"load average at start {load}; commit {m.get('git') or '?'}; {m['date_utc']}")


def markdown(report: dict) -> str:
    """The results as Markdown: one table per workload, then the targets."""
    lines = [f"Machine: {_machine_line(report['machine'])}.", "",
             f"Median of {report['protocol']['repeats']} timed runs after a cold run (min-max in brackets); "
             "peers take turns in rotating order in one process. \"x ref\" is a row's time over the reference "
             "row's (above 1: slower than the reference). Compile: first run minus the median run.", ""]
    for key, info in report["workloads"].items():
        ref = REFERENCE.get(key, _DEFAULT_REFERENCE)
        rows = [r for r in report["results"] if r["workload"] == key]
        per = "all members" if info["members"] > 1 else "one model"
        lines += [f"### {info['title']} ({info['epochs']} epochs, batch {info['batch_size']}, "
                  f"{info['n_train']} examples{', ' + str(info['members']) + ' members' if info['members'] > 1 else ''})",
                  "", f"| peer | ms/epoch ({per}) | x ref ({ref}) | compile s | test accuracy | GFLOP/s |",
                  "| --- | --- | --- | --- | --- | --- |"]
        ref_row = next((r for r in rows if r["peer"] == ref and "error" not in r), None)
        for r in rows:
            if "error" in r:
                lines.append(f"| {r['peer']} | failed: {r['error'][:80]} | | | | |")
                continue
            rel = r["median_s"] / ref_row["median_s"] if ref_row else None
            lines.append(
                f"| {r['peer']} | {_fmt(r['ms_per_epoch'])} ({_fmt(r['ms_per_epoch_min'])}-{_fmt(r['ms_per_epoch_max'])})"
                f" | {_fmt(rel)} | {_fmt(r['compile_s'], 2)} | {_fmt(r['test_accuracy'])} | {_fmt(r['gflops'])} |"
            )
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
