"""Where a fit's time goes: the hand-written scan built up one feature at a time, beside nnjax's own pieces.

For each workload (W1, W2, W4, W5 of :mod:`benchmarks.workloads`), one process times, in rotating
order so load hits every row alike:

* the build-up, each row the previous one plus one feature: the hand-written scan
  (:mod:`benchmarks.peers.handwritten_scan`); the short last batch padded with weight-0 rows and
  the weighted mean; each step gathering its own rows; the accuracy sum; the non-finite guard;
  nnjax's per-layer diagnostics; validation at the end of each epoch; the early-stopping carry (best
  parameters, a patience that never fires); the epoch ``cond``; the host preparation
  (``nnjax.fitting.prepare`` of the NumPy data, every call);
* nnjax's pieces alone: ``training.train_step`` (defaults, diagnostics on) in a bare scan with a
  whole-epoch gather; ``Plan.run`` (the compiled run, data already on the device); ``fitting.plan``
  (the host work); ``nnjax.fit`` on NumPy data and on device data.

Population workloads (W4) map every row over the members with ``jax.vmap``; nnjax's rows are then
``jax.jit(jax.vmap(nnjax.fit))``, ``nnjax.fit_population`` and a loop of jitted fits. The
population table adds ``jax.jit(jax.vmap(nnjax.fit))`` and ``fit_population`` for 8, 32 and 128
seeds of the digits net (64-128-64-10, batch 32, 20 epochs, defaults: diagnostics on) against as
many sequential jitted fits.

Each row is compiled (called once) before the timed rounds; the table gives the median and its
ratio to the hand-written scan (to the loop, for populations).

Usage::

    python -m benchmarks.decompose                   # W1, W2, W4, W5 and the population table
    python -m benchmarks.decompose --quick           # small sizes, one round: a smoke test
    python -m benchmarks.decompose --workloads w2 --rounds 5 --json out.json
"""

from __future__ import annotations

import argparse
import json
import pathlib
import statistics
import time
from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np
import optax

import nnjax
from benchmarks import workloads
from benchmarks.peers import handwritten_scan
from benchmarks.peers.jax_mlp import as_tuples
from nnjax.train import diagnostics, fitting, loop

__all__ = ["FEATURES", "build_up", "main", "population_rows"]

#: The build-up's features, in the order they are added.
FEATURES = ("weighted mean", "gather per step", "accuracy", "guard", "diagnostics", "validation", "early stopping",
            "epoch cond", "host preparation")
POPULATION_SIZES = (8, 32, 128)


def _per_example(w: workloads.Workload, logits, y):
    if w.loss == "softmax_cross_entropy":
        return optax.softmax_cross_entropy_with_integer_labels(logits, y)
    return optax.sigmoid_binary_cross_entropy(logits[:, 0], y.astype(logits.dtype))


def _correct(w: workloads.Workload, logits, y):
    guess = jnp.argmax(logits, -1) if w.loss == "softmax_cross_entropy" else (logits[:, 0] > 0).astype(jnp.int32)
    return (guess == y).astype(jnp.float32)


def _forward(params, x, activation):
    act = jax.nn.relu if activation == "relu" else jax.nn.sigmoid
    hidden = []
    for wb, b in params[:-1]:
        x = act(x @ wb + b)
        hidden.append(x)
    wb, b = params[-1]
    return x @ wb + b, hidden


def build_up(w: workloads.Workload, features: tuple[str, ...]) -> Callable:
    """``run(params, x, y, key) -> (params, history)``: the hand-written scan with ``features`` added."""
    f = set(features)
    n, batch, lr = w.n_train, w.batch_size, w.learning_rate
    steps = -(-n // batch)
    x_val, y_val = jnp.asarray(w.x_test), jnp.asarray(w.y_test)
    activations = (w.activation,) * (len(w.sizes) - 2)

    def step(params, xs, ys, ws, s):
        def objective(p):
            logits, hidden = _forward(p, xs, w.activation)
            per = _per_example(w, logits, ys)
            return jnp.sum(per * ws) / jnp.sum(ws), (per, logits, hidden)

        (loss, (per, logits, hidden)), grads = jax.value_and_grad(objective, has_aux=True)(params)
        new = jax.tree.map(lambda p, g: p - lr * g, params, grads)
        info = {"loss_sum": jnp.sum(per * ws), "weight": jnp.sum(ws)}
        if "accuracy" in f:
            info["correct"] = jnp.sum(_correct(w, logits, ys) * ws)
        if "guard" in f:
            grad_sq = sum(jnp.sum(jnp.square(g)) for g in jax.tree.leaves(grads))
            ok = jnp.isfinite(loss) & jnp.isfinite(grad_sq) & jnp.isfinite(sum(jnp.sum(p) for p in jax.tree.leaves(new)))
            new = jax.tree.map(lambda a, b: jnp.where(ok, a, b), new, params)
            info["applied"] = ok
        if "diagnostics" in f:
            as_dicts = lambda tree: [{"w": layer[0]} for layer in tree]  # noqa: E731
            updates = jax.tree.map(lambda g: -lr * g, grads)
            info["layers"] = diagnostics.layer_stats(as_dicts(grads), as_dicts(updates), hidden, ws,
                                                     sampled=diagnostics.sampled_step(s, steps), activations=activations)
        return new, info

    def epoch(params, key, x, y):
        perm = jax.random.permutation(key, n)
        idx = jnp.concatenate([perm, jnp.zeros((steps * batch - n,), perm.dtype)]).reshape(steps, batch)
        ws = (jnp.arange(steps * batch) < n).astype(jnp.float32).reshape(steps, batch)
        if "gather per step" in f:
            body = lambda p, b: step(p, x[b[0]], y[b[0]], b[1], b[2])  # noqa: E731
            params, infos = jax.lax.scan(body, params, (idx, ws, jnp.arange(steps)))
        else:
            body = lambda p, b: step(p, *b)  # noqa: E731
            params, infos = jax.lax.scan(body, params, (x[idx], y[idx], ws, jnp.arange(steps)))
        metrics = {"loss": jnp.sum(infos["loss_sum"]) / jnp.sum(infos["weight"])}
        if "accuracy" in f:
            metrics["accuracy"] = jnp.sum(infos["correct"]) / jnp.sum(infos["weight"])
        if "guard" in f:
            metrics["skipped"] = steps - jnp.sum(infos["applied"].astype(jnp.int32))
        if "diagnostics" in f:
            metrics.update(diagnostics.epoch_stats(infos["layers"], [{"w": layer[0]} for layer in params]))
        if "validation" in f:
            logits = _forward(params, x_val, w.activation)[0]
            metrics["val_loss"] = jnp.mean(_per_example(w, logits, y_val))
            metrics["val_accuracy"] = jnp.mean(_correct(w, logits, y_val))
        return params, metrics

    def run(params, x, y, key):
        def one(carry, k):
            params, best, best_value, bad, stopped = carry

            def go(params):
                return epoch(params, k, x, y)

            if "epoch cond" in f:
                shapes = jax.eval_shape(go, params)[1]
                params, metrics = jax.lax.cond(~stopped, go, lambda p: (p, jax.tree.map(
                    lambda s: jnp.full(s.shape, jnp.nan, s.dtype) if jnp.issubdtype(s.dtype, jnp.floating)
                    else jnp.zeros(s.shape, s.dtype), shapes)), params)
            else:
                params, metrics = go(params)
            if "early stopping" in f:
                value = metrics.get("val_loss", metrics["loss"])
                better = value < best_value
                best = jax.tree.map(lambda a, b: jnp.where(better, a, b), params, best)
                best_value = jnp.where(better, value, best_value)
                bad = jnp.where(better, 0, bad + 1)
                stopped = stopped | (bad > 10 ** 6)  # a patience that never fires: the carry's cost alone
            return (params, best, best_value, bad, stopped), metrics

        start = (params, params, jnp.inf, jnp.int32(0), jnp.array(False))
        (params, *_), history = jax.lax.scan(one, start, jax.random.split(key, w.epochs))
        return params, history

    return run


def _timed(fn: Callable) -> float:
    t = time.perf_counter()
    jax.block_until_ready(fn())
    return time.perf_counter() - t


def _handwritten_rows(w: workloads.Workload) -> dict[str, Callable]:
    """The build-up's rows: name -> a call that trains once."""
    members = w.members
    x, y = jnp.asarray(w.x_train), jnp.asarray(w.y_train)
    if members == 1:
        start, key = as_tuples(w.init_params[0]), jax.random.key(w.seeds[0])
        wrap = jax.jit
    else:
        start = jax.tree.map(lambda *a: jnp.stack(a), *[as_tuples(p) for p in w.init_params])
        key = jax.random.split(jax.random.key(0), members)
        wrap = lambda run: jax.jit(jax.vmap(run, in_axes=(0, None, None, 0)))  # noqa: E731
    rows = {"hand-written scan": (lambda run: lambda: run(start, x, y, key))(wrap(handwritten_scan.make_run(w)))}
    options = nnjax.Options(loss=w.loss, optimizer=optax.sgd(w.learning_rate), epochs=w.epochs, batch_size=w.batch_size)
    for i, name in enumerate(FEATURES):
        chosen = FEATURES[:i + 1]
        run = wrap(build_up(w, tuple(c for c in chosen if c != "host preparation")))
        if name == "host preparation":
            def call(run=run):
                prepared = fitting.prepare(w.net, (w.x_train, w.y_train), options)
                return run(start, prepared.x, prepared.y, key)
        else:
            call = (lambda run: lambda: run(start, x, y, key))(run)
        rows["+ " + name] = call
    return rows


def _nnjax_rows(w: workloads.Workload) -> dict[str, Callable]:
    settings = dict(loss=w.loss, optimizer=optax.sgd(w.learning_rate), epochs=w.epochs, batch_size=w.batch_size)
    net, x, y = w.net, w.x_train, w.y_train
    xd, yd = jax.device_put(x), jax.device_put(y)
    if w.members > 1:
        keys = jax.random.split(jax.random.key(0), w.members)
        fit = lambda k: nnjax.fit(k, net, (xd, yd), **settings)  # noqa: E731
        mapped, one = jax.jit(jax.vmap(fit)), jax.jit(fit)
        return {
            "jax.jit(jax.vmap(nnjax.fit))": lambda: mapped(keys),
            "nnjax.fit_population": lambda: nnjax.fit_population(keys, net, (x, y), **{
                **settings, "optimizer": "sgd", "learning_rate": w.learning_rate}),
            f"loop of {w.members} jitted nnjax.fit": lambda: [one(k) for k in keys],
        }
    key = jax.random.key(w.seeds[0])
    plan = fitting.plan(key, net, (xd, yd), **settings)
    cfg = plan.cfg

    def bare(params, opt_state, key):  # train_step in a scan over a whole-epoch gather, no epoch wrapper
        def epoch(carry, k):
            perm = jax.random.permutation(k, cfg.n)
            idx = jnp.concatenate([perm, jnp.zeros((cfg.steps * cfg.batch_size - cfg.n,), perm.dtype)])
            idx = idx.reshape(cfg.steps, cfg.batch_size)
            ws = (jnp.arange(cfg.steps * cfg.batch_size) < cfg.n).astype(jnp.float32).reshape(idx.shape)

            def body(c, b):
                p, s, o = c
                p, s, o, info = loop.train_step(p, s, o, (xd[b[0]], yd[b[0]], b[1]), key=k, cfg=cfg,
                                                sampled=diagnostics.sampled_step(b[2], cfg.steps))
                return (p, s, o), info.loss_sum

            carry, losses = jax.lax.scan(body, carry, (idx, ws, jnp.arange(cfg.steps)))
            return carry, jnp.sum(losses)

        return jax.lax.scan(epoch, (params, plan.ts.state, opt_state), jax.random.split(key, w.epochs))

    bare_jit = jax.jit(bare)
    return {
        "nnjax train_step, bare scan": lambda: bare_jit(plan.ts.params, plan.ts.opt_state, key),
        "nnjax Plan.run (data on device)": lambda: plan.run(plan.ts),
        "nnjax fitting.plan (host work)": lambda: fitting.plan(key, net, (x, y), **settings).data,
        "nnjax.fit (NumPy data)": lambda: nnjax.fit(key, net, (x, y), **settings),
        "nnjax.fit (device data)": lambda: nnjax.fit(key, net, (xd, yd), **settings),
    }


def _measure(rows: dict[str, Callable], rounds: int) -> dict[str, dict]:
    compile_s = {name: _timed(call) for name, call in rows.items()}  # compiled (and cached) before timing
    times: dict[str, list[float]] = {name: [] for name in rows}
    names = list(rows)
    for r in range(rounds):
        for name in names[r % len(names):] + names[:r % len(names)]:  # rotate the order every round
            times[name].append(_timed(rows[name]))
    return {name: {"median_s": statistics.median(t), "times_s": t, "first_s": compile_s[name]}
            for name, t in times.items()}


def population_rows(sizes: tuple[int, ...], epochs: int, rounds: int) -> list[dict]:
    """``jax.jit(jax.vmap(nnjax.fit))`` and ``fit_population`` against a loop of jitted fits, per size."""
    w = workloads.build("w1")
    x, y = jax.device_put(w.x_train), jax.device_put(w.y_train)
    settings = dict(loss=w.loss, epochs=epochs, batch_size=w.batch_size)
    fit = lambda k: nnjax.fit(k, w.net, (x, y), optimizer=optax.sgd(w.learning_rate), **settings)  # noqa: E731
    mapped, one = jax.jit(jax.vmap(fit)), jax.jit(fit)
    out = []
    for size in sizes:
        keys = jax.random.split(jax.random.key(0), size)
        measured = _measure({
            "vmap": lambda: mapped(keys),
            "fit_population": lambda: nnjax.fit_population(keys, w.net, (x, y), optimizer="sgd",
                                                           learning_rate=w.learning_rate, **settings),
            "loop": lambda: [one(k) for k in keys],
        }, rounds)
        loop_s = measured["loop"]["median_s"]
        out.append({"members": size, "epochs": epochs, **{k: v["median_s"] for k, v in measured.items()},
                    "vmap_over_loop": measured["vmap"]["median_s"] / loop_s,
                    "fit_population_over_loop": measured["fit_population"]["median_s"] / loop_s})
    return out


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.decompose", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small workloads, one round, populations of 4")
    parser.add_argument("--workloads", default=",".join(workloads.NAMES))
    parser.add_argument("--rounds", type=int, default=None, help="timed rounds per row (default 5, --quick 1)")
    parser.add_argument("--no-population", action="store_true", help="leave out the population table")
    parser.add_argument("--json", default=None, help="also write the measurements here")
    args = parser.parse_args(argv)
    rounds = args.rounds or (1 if args.quick else 5)
    from benchmarks import results

    machine = results.machine()
    report: dict = {"machine": machine, "rounds": rounds, "quick": args.quick, "workloads": {}}
    print(f"decomposition; {results.machine_line(machine)}; medians of {rounds} rounds")
    for name in [s for s in args.workloads.split(",") if s]:
        w = workloads.build(name, quick=args.quick)
        measured = _measure({**_handwritten_rows(w), **_nnjax_rows(w)}, rounds)
        base = measured["hand-written scan"]["median_s"]
        for row in measured.values():
            row["over_scan"] = row["median_s"] / base
        report["workloads"][name] = {"title": w.title, "rows": measured}
        print(f"\n{w.title} ({w.epochs} epochs, {w.members} member(s))\n\n| row | median s | x scan | first call s |")
        print("| --- | --- | --- | --- |")
        for row_name, row in measured.items():
            print(f"| {row_name} | {row['median_s']:.4f} | {row['over_scan']:.2f} | {row['first_s']:.2f} |")
    if not args.no_population:
        sizes, epochs = ((4,), 2) if args.quick else (POPULATION_SIZES, 20)
        report["population"] = population_rows(sizes, epochs, rounds)
        print("\npopulation of the digits net, defaults (diagnostics on)\n")
        print("| members | epochs | vmap s | fit_population s | loop s | vmap / loop | fit_population / loop |")
        print("| --- | --- | --- | --- | --- | --- | --- |")
        for r in report["population"]:
            print(f"| {r['members']} | {r['epochs']} | {r['vmap']:.3f} | {r['fit_population']:.3f} | {r['loop']:.3f} | "
                  f"{r['vmap_over_loop']:.2f} | {r['fit_population_over_loop']:.2f} |")
    if args.json:
        pathlib.Path(args.json).write_text(json.dumps(report, indent=1))
    return report


if __name__ == "__main__":
    main()
