"""A hyper-parameter sweep in one compiled program: learning rate x L2 x dropout x init scale, with seeds.

Every (setting, seed) pair is one member of a population (``nnjax.sweep``); the learning rate,
penalties, dropout rate and initial weight scale enter the compiled program as traced numbers, so
the whole grid compiles once. Seed ``s`` is the same for every setting (same initial draws, same
shuffles), so the table compares settings, not luck. The winner is then retrained on the training
data and scored on a test split that the sweep never saw.

Run: ``python examples/hyperparameter_sweep.py [--quick] [--out DIR] [--seed N]``
"""

from __future__ import annotations

import _common

import jax
import numpy as np

import nnjax
from nnjax import sweeps


def marginal_means(out: nnjax.SweepResult) -> dict[str, dict[float, float]]:
    """For each hyper-parameter, the mean score of the settings with each of its values."""
    means = out.scores.mean(axis=1)
    return {name: {float(v): float(np.nanmean(means[values == v])) for v in np.unique(values)}
            for name, values in out.settings.items()}


def main(argv: list[str] | None = None) -> dict:
    args = _common.parse_args("hyperparameter_sweep", "a grid sweep with seeds in one program", argv)
    data = nnjax.data.load_dataset("digits", n=500 if args.quick else None, seed=args.seed)
    (x_tr, y_tr), (x_val, y_val), (x_te, y_te) = nnjax.data.split(
        args.seed, data.x, data.y, fractions=(0.6, 0.2, 0.2), stratify=data.y)
    _, x_tr, x_val, x_te = nnjax.data.standardize(x_tr, x_val, x_te)
    net = nnjax.MLP((64, 32, 10), activation="relu", output="softmax")
    if args.quick:
        settings = sweeps.grid(learning_rate=[0.003, 0.1], l2=[0.0, 1e-2], dropout=[0.0, 0.3])
        seeds, epochs = 2, 4
    else:
        settings = sweeps.grid(learning_rate=[0.003, 0.01, 0.03, 0.1], l2=[0.0, 1e-3], dropout=[0.0, 0.3],
                               init_scale=[0.3, 1.0])
        seeds, epochs = 3, 20
    options = dict(loss="softmax_cross_entropy", optimizer="sgd", epochs=epochs, batch_size=32, diagnostics=False)
    key = jax.random.key(args.seed)

    out, seconds = _common.timed(sweeps.sweep, key, net, (x_tr, y_tr), settings, seeds=seeds,
                                 validation=(x_val, y_val), **options)
    n_settings = len(out.scores)
    _common.section(f"{n_settings} settings x {seeds} seeds = {n_settings * seeds} runs of {epochs} epochs, "
                    f"one program, {seconds:.1f} s including compilation; score: final {out.metric}")
    lines = out.format().splitlines()
    print("\n".join(lines if len(lines) <= 13 else lines[:11] + ["..."] + lines[-2:]))

    rows = out.table()
    win, runner_up = rows[0], rows[1]
    chosen = {k: win[k] for k in out.settings}
    final = nnjax.fit(key, net, (x_tr, y_tr), validation=(x_te, y_te), **{**options, **{
        k: v for k, v in chosen.items() if k != "init_scale"}},
        params=nnjax.population.scale_weights(
            nnjax.init(nnjax.training.split_run_key(key)[0], net), chosen.get("init_scale", 1.0)))
    test_acc = float(final.history["val_accuracy"][-1])

    margins = marginal_means(out)
    spans = {name: max(m.values()) - min(m.values()) for name, m in margins.items()}
    strongest = max(spans, key=spans.get)
    # Seeds are shared between settings, so the winner's lead is judged on paired (same-seed) differences.
    paired = out.scores[runner_up["setting"]] - out.scores[win["setting"]]
    gap = abs(float(paired.mean()))
    noise = float(paired.std(ddof=1) / np.sqrt(seeds)) if seeds > 1 else float("inf")

    plt = _common.pyplot()
    fig, ax = plt.subplots(figsize=(6.5, 4))
    lrs = np.unique(out.settings["learning_rate"])
    others = [k for k in out.settings if k != "learning_rate"]
    combos = sorted({tuple(out.settings[k][i] for k in others) for i in range(n_settings)})
    for combo in combos:
        pick = [i for i in range(n_settings) if tuple(out.settings[k][i] for k in others) == combo]
        ax.errorbar(out.settings["learning_rate"][pick], out.scores[pick].mean(axis=1),
                    yerr=out.scores[pick].std(axis=1), marker="o", capsize=3,
                    label=", ".join(f"{k}={v:g}" for k, v in zip(others, combo)))
    ax.set_xscale("log")
    ax.set_xticks(lrs)
    ax.set_xticklabels([f"{v:g}" for v in lrs])
    ax.set_xlabel("learning rate")
    ax.set_ylabel(f"final {out.metric} (mean +- sd over seeds)")
    ax.legend(fontsize=7)
    _common.save(fig, args.out, "hyperparameter_sweep.png")

    _common.conclude(
        "the winner is " + ", ".join(f"{k}={v:g}" for k, v in chosen.items())
        + f" with {out.metric} {win['mean']:.4f} +- {win['std']:.4f} over {seeds} seeds.",
        f"its lead over the runner-up (setting {runner_up['setting']}, {runner_up['mean']:.4f}) is {gap:.4f}, "
        f"{'larger' if gap > 2 * noise else 'not clearly larger'} than twice the standard error of the paired "
        f"same-seed differences ({2 * noise:.4f}).",
        f"{strongest} mattered most: averaged over the other settings its values span {spans[strongest]:.4f} in "
        f"{out.metric} (" + ", ".join(f"{k} {v:.4f}" for k, v in spans.items() if k != strongest) + ").",
        f"retrained with the winner, the network scores {test_acc:.1%} on the {len(x_te)} held-out test digits.",
    )
    return {"winner": chosen, "table": rows, "test_accuracy": test_acc, "seconds": seconds}


if __name__ == "__main__":
    main()
