"""Population-based training in one compiled program, and its best member replayed by plain fits.

A deep tanh network on digits trained with plain SGD, where the learning rate's schedule matters.
``nnjax.pbt`` trains 8 members; every k epochs, on the device, the worst quarter copies the
parameters and optimizer state of the best quarter and perturbs the copied learning rate (x0.8 or
x1.2, or a fresh draw). The same 8 starting rates trained at fixed rates are the baseline. The
best member's schedule (``nnjax.search.replay``) is then trained again with plain ``nnjax.fit``
calls, chunk by chunk, and matches. ``nnjax tune --method pbt`` runs the same search from the
command line (see docs/cli.md).

Run: ``python examples/pbt.py [--quick] [--out DIR] [--seed N]``
"""

from __future__ import annotations

import _common

import time

import jax
import numpy as np

import nnjax
from nnjax import search


def main(argv: list[str] | None = None) -> dict:
    args = _common.parse_args("pbt", "population-based training, exploit and explore on the device", argv)
    data = nnjax.data.load_dataset("digits", n=600 if args.quick else None, seed=args.seed)
    (x_tr, y_tr), (x_val, y_val) = nnjax.data.split(args.seed, data.x, data.y, fractions=(0.75, 0.25),
                                                    stratify=data.y)
    _, x_tr, x_val = nnjax.data.standardize(x_tr, x_val)
    depth = 3 if args.quick else 8
    net = nnjax.MLP((64,) + (32,) * depth + (10,), activation="tanh", output="softmax")
    shared = dict(loss="softmax_cross_entropy", optimizer="sgd", batch_size=32, diagnostics=False,
                  validation=(x_val, y_val))
    members, generations, k = (8, 4, 2) if args.quick else (16, 10, 4)

    start = time.perf_counter()
    out = search.pbt(jax.random.key(args.seed), net, (x_tr, y_tr), {"learning_rate": search.LogUniform(0.01, 1.0)},
                     members=members, generations=generations, epochs_per_generation=k, **shared)
    seconds = time.perf_counter() - start
    fixed = nnjax.fit_population(out.keys, net, (x_tr, y_tr), learning_rate=out.settings["learning_rate"][0],
                                 epochs=generations * k, **shared)
    fixed_scores = nnjax.population.member_scores(fixed, "val_loss")
    b, f = out.best, int(np.nanargmin(fixed_scores))
    _common.section(f"{members} members, {generations} generations of {k} epochs, one program ({seconds:.1f} s)")
    _common.table(["method", "val loss", "val accuracy"], [
        ["pbt (best member)", float(out.scores[-1, b]), float(out.result.history["val_accuracy"][b, -1])],
        ["best fixed rate", float(fixed_scores[f]), float(nnjax.population.member_scores(fixed, "val_accuracy")[f])],
    ])
    schedule = search.replay(out)
    _common.section("the best member's lineage: slot and learning rate per generation")
    _common.table(["generation", "slot", "learning rate"], [[s["generation"], s["slot"], s["learning_rate"]]
                                                             for s in schedule])
    again = search.replay_fit(out, net, (x_tr, y_tr), **shared)
    gap = float(np.max(np.abs(np.asarray(again.history["val_loss"]) - search.lineage_history(out)["val_loss"])))

    plt = _common.pyplot()
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.8))
    epochs = np.arange(1, generations * k + 1)
    for i in range(members):
        left.plot(epochs, out.result.history["val_loss"][i], color="tab:blue", alpha=0.3, linewidth=0.8)
        rates = out.settings["learning_rate"][:, i]
        right.step(np.arange(generations + 1) * k + 1, np.append(rates, rates[-1]), where="post",
                   color="tab:blue", alpha=0.3, linewidth=0.8)
    left.plot(epochs, fixed.history["val_loss"][f], color="tab:orange", label="best fixed rate")
    left.plot(epochs, search.lineage_history(out)["val_loss"], color="tab:blue", linewidth=2, label="pbt best lineage")
    lineage = [s["learning_rate"] for s in schedule]
    right.step(np.arange(generations + 1) * k + 1, lineage + lineage[-1:], where="post", color="tab:blue",
               linewidth=2, label="best member's schedule")
    left.set(xlabel="epoch", ylabel="validation loss", yscale="log", title="validation loss")
    right.set(xlabel="epoch", ylabel="learning rate", yscale="log", title="learning rate per slot")
    left.legend(), right.legend()
    _common.save(fig, args.out, "pbt.png")
    # every member's lineage schedule (the plot `nnjax tune --method pbt` writes), and the winner's own model
    nnjax.plots.plot_pbt_schedules(out, path=args.out / "pbt_schedules.png")
    print(f"saved {args.out / 'pbt_schedules.png'}")
    best = out.member()
    assert np.allclose(best.history["val_loss"], search.lineage_history(out)["val_loss"])
    _common.conclude(
        f"PBT's best member ends at validation loss {out.scores[-1, b]:.4f} against {fixed_scores[f]:.4f} for the "
        f"best of the same {members} rates held fixed",
        f"replaying its schedule with {generations} plain fit calls reproduces its validation losses to {gap:.1e}",
    )
    return {"pbt": float(out.scores[-1, b]), "fixed": float(fixed_scores[f]), "replay_gap": gap}


if __name__ == "__main__":
    main()
