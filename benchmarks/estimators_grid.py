"""What a scikit-learn user waits for: ``GridSearchCV`` over nnjax's MLPClassifier beside scikit-learn's.

The search of issue 23: a pipeline ``StandardScaler -> MLPClassifier(hidden_layer_sizes=(64,),
max_iter=50)``, 2 learning rates x 2 alphas x 3 folds on digits (12 fits, 12 scores, then the
refit on all rows), ``n_jobs=1``. Each search runs in a fresh process (imports not timed); nnjax
runs with an empty persistent compilation cache, then a second process reads the cache it filled.
Inside the nnjax processes every ``fit``/``predict``/``score`` call is timed with the XLA compiles
it triggered, which says where the time goes (per fold, per setting, per call).

Usage::

    python -m benchmarks.estimators_grid              # 1 round
    python -m benchmarks.estimators_grid --rounds 3 --json out.json
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import pathlib
import statistics
import subprocess
import sys
import tempfile

ROOT = pathlib.Path(__file__).resolve().parent.parent

CHILD = r"""
import json, sys, time, warnings
warnings.filterwarnings("ignore")
kind = sys.argv[1]
from sklearn.datasets import load_digits
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
X, y = load_digits(return_X_y=True)
calls = []
if kind == "nnjax":
    import jax
    import nnjax.sklearn
    from benchmarks import compiles
    cls = nnjax.sklearn.MLPClassifier

    def timed(name, method):
        def wrapper(self, *args, **kwargs):
            with compiles.counting() as count:
                start = time.perf_counter()
                out = method(self, *args, **kwargs)
                seconds = time.perf_counter() - start
            calls.append({"call": name, "rows": len(args[0]), "lr": self.learning_rate_init, "alpha": self.alpha,
                          "seconds": seconds, "compiles": count.compiles, "compile_s": count.compile_s})
            return out
        return wrapper

    for name in ("fit", "score"):  # score calls predict
        setattr(cls, name, timed(name, getattr(cls, name)))
else:
    from sklearn.neural_network import MLPClassifier as cls
search = GridSearchCV(make_pipeline(StandardScaler(), cls(hidden_layer_sizes=(64,), max_iter=50, random_state=0)),
                      {"mlpclassifier__learning_rate_init": [1e-3, 1e-2], "mlpclassifier__alpha": [1e-4, 1e-2]},
                      cv=3, n_jobs=1)
start = time.perf_counter()
search.fit(X, y)
seconds = time.perf_counter() - start
print("RESULT " + json.dumps({"seconds": seconds, "best_score": float(search.best_score_), "calls": calls}))
"""


def _child(kind: str, cache_dir: str | None) -> dict:
    env = dict(os.environ, NNJAX_CACHE_DIR=cache_dir or "off")
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), *filter(None, [env.get("PYTHONPATH")])])
    done = subprocess.run([sys.executable, "-c", CHILD, kind], env=env, capture_output=True, text=True, timeout=900,
                          cwd=ROOT)
    if done.returncode:
        raise RuntimeError(done.stderr[-3000:])
    return json.loads(done.stdout.split("RESULT ", 1)[1])


def _cell(values: list[float]) -> str:
    return f"{statistics.median(values):.2f} ({min(values):.2f}-{max(values):.2f})"


def breakdown(calls: list[dict]) -> list[str]:
    """Table rows: per kind of call, how many, their seconds and compiles (first call of a kind apart)."""
    groups: dict[str, list[dict]] = collections.defaultdict(list)
    for c in calls:
        groups[c["call"]].append(c)
    rows = []
    for name, group in groups.items():
        first, rest = group[0], group[1:]
        rows.append(f"| {name} first ({first['rows']} rows) | 1 | {first['seconds']:.3f} | {first['compiles']} |"
                    f" {first['compile_s']:.3f} |")
        if rest:
            rows.append(f"| {name} others | {len(rest)} | {sum(c['seconds'] for c in rest):.3f} | "
                        f"{sum(c['compiles'] for c in rest)} | {sum(c['compile_s'] for c in rest):.3f} |")
    return rows


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.estimators_grid", description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--json", default=None, help="also write the measurements here")
    args = parser.parse_args(argv)
    runs: dict[str, list[dict]] = {"scikit-learn": [], "nnjax, empty cache": [], "nnjax, warm cache": []}
    for _ in range(args.rounds):  # side by side in every round
        runs["scikit-learn"].append(_child("sklearn", None))
        with tempfile.TemporaryDirectory() as cache:
            runs["nnjax, empty cache"].append(_child("nnjax", cache))
            runs["nnjax, warm cache"].append(_child("nnjax", cache))
    base = [r["seconds"] for r in runs["scikit-learn"]]
    print(f"GridSearchCV, 2 lr x 2 alpha x 3 folds + refit on digits; {os.cpu_count()} cores; "
          f"load {os.getloadavg()[0]:.2f}; medians of {args.rounds} round(s) (min-max)")
    print("| search | wall s | x scikit-learn | best CV score |")
    print("| --- | --- | --- | --- |")
    for name, rs in runs.items():
        secs = [r["seconds"] for r in rs]
        ratio = [s / b for s, b in zip(secs, base)]
        print(f"| {name} | {_cell(secs)} | {_cell(ratio)} | {statistics.median(r['best_score'] for r in rs):.3f} |")
    for name in ("nnjax, empty cache", "nnjax, warm cache"):
        print(f"\n{name}, last round, per call:")
        print("| calls | count | seconds | compiles | compile s |")
        print("| --- | --- | --- | --- | --- |")
        print("\n".join(breakdown(runs[name][-1]["calls"])))
    if args.json:
        pathlib.Path(args.json).write_text(json.dumps(runs, indent=1))
    return runs


if __name__ == "__main__":
    main()
