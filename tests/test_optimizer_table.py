"""The optimizer table's contract, one parametrised test per entry (in the style of optax's alias_test).

Every optimizer x schedule of ``nnjax._base.optimizers`` builds, takes the numbers the table says
(injected into its state, so sweeping them compiles once), trains a small least-squares problem
to a lower loss, keeps its state's shapes and the parameters' dtype, and equal settings compare
equal by value (one compiled program). Everything that lists optimizers derives from the table.
"""

from __future__ import annotations

import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from nnjax import optim
from nnjax._base import checks, optimizers
from nnjax.cli import build_parser

STEPS = 25
# Lengths every schedule can be built with (a step schedule halves the rate every 10 steps).
LENGTHS = dict(steps=STEPS, decay_steps=8, warmup_steps=4, decay_rate=0.5, final_fraction=0.1)
RATE = {"sgd": 0.3, "adagrad": 0.5}  # plain SGD and AdaGrad (steps shrinking as 1/sqrt(t)) need larger rates


def _problem(seed=0):
    """A well-conditioned least-squares problem 0.5 ||A w + b - y||^2 / n with a known minimum."""
    rng = np.random.default_rng(seed)
    a = rng.normal(size=(32, 4)).astype(np.float32) / np.sqrt(4)
    y = (a @ rng.normal(size=4) + 0.5).astype(np.float32)
    params = {"w": jnp.zeros(4, jnp.float32), "b": jnp.zeros((), jnp.float32)}

    def loss(p):
        return 0.5 * jnp.mean(jnp.square(a @ p["w"] + p["b"] - y))

    return params, loss


def _train(tx, params, loss):
    """STEPS updates, op by op (each operation's small program is shared by every entry: cheaper
    than compiling one scan per entry); returns the last params, the first and last states, the
    losses and the last updates."""
    grad = jax.value_and_grad(loss)
    state = start = tx.init(params)
    values = []
    for _ in range(STEPS):
        value, grads = grad(params)
        updates, state = tx.update(grads, state, params)
        params = optax.apply_updates(params, updates)
        values.append(float(value))
    return params, start, state, np.asarray(values), updates


@pytest.mark.parametrize("schedule", list(optimizers.SCHEDULES))
@pytest.mark.parametrize("name", list(optimizers.OPTIMIZERS))
def test_every_optimizer_with_every_schedule_trains_and_keeps_its_state(name, schedule):
    params, loss = _problem()
    rate = optim.schedule(schedule, RATE.get(name, 0.1), **LENGTHS)
    tx = optim.make(name, rate)
    last, start, state, values, updates = _train(tx, params, loss)
    assert np.all(np.isfinite(values)) and float(loss(last)) < 0.5 * values[0], (name, schedule, values[[0, -1]])
    shapes = lambda tree: jax.tree.map(lambda a: (jnp.shape(a), jnp.result_type(a)), tree)  # noqa: E731
    assert shapes(state) == shapes(start)  # the state's structure, shapes and dtypes are stable
    assert jax.tree.map(lambda u: u.dtype, updates) == jax.tree.map(lambda p: p.dtype, params)  # dtypes kept
    # Built again with equal settings, it is the same program (nnjax.fit compiles it once).
    assert optim.by_value(optim.make(name, optim.schedule(schedule, RATE.get(name, 0.1), **LENGTHS)), params) == \
        optim.by_value(tx, params)


@pytest.mark.parametrize("name", list(optimizers.OPTIMIZERS))
def test_each_optimizer_takes_the_numbers_the_table_names_and_traces_them(name):
    entry = optimizers.OPTIMIZERS[name]
    numbers = {"momentum": 0.8, "beta_1": 0.7, "beta_2": 0.95, "epsilon": 1e-6, "weight_decay": 0.03}
    params, _ = _problem()
    hyper = optim.make(name, 0.25, **numbers).init(params).hyperparams
    assert float(hyper["learning_rate"]) == 0.25
    for ours, theirs in entry.numbers.items():
        assert float(hyper[theirs]) == pytest.approx(numbers[ours], rel=1e-6)
    assert {"learning_rate", *entry.numbers.values()} <= set(hyper)
    # The numbers live in the state, not the program: other values compile nothing new.
    other = {k: v / 2 for k, v in numbers.items()}
    assert optim.by_value(optim.make(name, 0.5, **other), params) == optim.by_value(optim.make(name, 0.25, **numbers),
                                                                                  params)


def test_the_table_is_the_one_list_of_names():
    assert checks.OPTIMIZERS == tuple(optim.OPTIMIZERS) == tuple(optimizers.OPTIMIZERS)
    assert checks.SCHEDULES == tuple(optim.SCHEDULES) == tuple(optimizers.SCHEDULES)
    train = build_parser()._subparsers._group_actions[0].choices["train"]  # noqa: SLF001
    helps = {a.dest: a.help for a in train._actions}  # noqa: SLF001
    assert all(name in helps["optimizer"] for name in optimizers.OPTIMIZERS)
    assert all(name in helps["schedule"] for name in optimizers.SCHEDULES)
    with pytest.raises(ValueError, match="optimizer: expected one of sgd, momentum, .* got 'lbfgs'"):
        optim.make("lbfgs")
    with pytest.raises(TypeError, match="got betas"):
        optim.build("adam", 0.1, betas=0.9)


def test_the_command_line_reads_the_table_without_jax():
    code = ("import sys\nfrom nnjax.cli import main\ntry:\n    main(['train', '--help'])\nexcept SystemExit:\n    pass\n"
            "assert 'jax' not in sys.modules, 'nnjax train --help imported JAX'")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "warmup_cosine" in proc.stdout and "adagrad" in proc.stdout


def test_warmup_cosine_without_warmup_starts_at_the_peak_and_with_one_at_zero():
    peak, steps = 0.2, 100
    cold = optim.schedule("warmup_cosine", peak, steps=steps)
    warm = optim.schedule("warmup_cosine", peak, steps=steps, warmup_steps=10)
    t = np.arange(steps + 1)
    np.testing.assert_allclose([float(cold(i)) for i in t], peak * 0.5 * (1 + np.cos(np.pi * t / steps)),
                               rtol=1e-5, atol=1e-7)  # cosine decay from the first step
    assert float(warm(0)) == 0.0 and float(warm(5)) == pytest.approx(peak / 2) and float(warm(10)) == pytest.approx(peak)


def test_the_command_line_builds_from_the_table_and_checks_the_rate_once(monkeypatch):
    """--lr is checked at the edge (check_args, under its flag's name); the table builds without
    checking it again, so the rule runs once between --lr and the update."""
    from nnjax.cli import _parser, _setup

    calls = []
    real = checks.check

    def counting(rule, value, name=None):
        if rule == "learning_rate":
            calls.append(name)
        return real(rule, value, name)

    monkeypatch.setattr(checks, "check", counting)
    args = _parser.parse_args(["train", "--dataset", "xor", "--optimizer", "nesterov", "--schedule", "cosine",
                               "--lr", "0.05", "--epochs", "2", "--batch-size", "16", "--hidden", "4"])
    setup = _setup.make_setup(args)
    assert calls == ["--lr"]
    hyper = setup.options.optimizer.init({"w": jnp.zeros(2)}).hyperparams
    assert float(hyper["momentum"]) == pytest.approx(0.9) and float(hyper["learning_rate"]) == pytest.approx(0.05)


def _plateau_problem(rng):
    """Linear least squares with noise: the loss falls to a floor (the noise) and stays there."""
    x = rng.normal(size=(32, 3)).astype(np.float32)
    y = (x @ np.array([1.0, -2.0, 0.5]) + 0.3 + 0.5 * rng.normal(size=32)).astype(np.float32)
    return x, y


def test_a_transformation_that_takes_the_loss_gets_it_every_step(key, rng):
    """optax.contrib.reduce_on_plateau needs ``value=`` (optax's extra-args protocol): fit passes
    each step's objective, the scale drops once the loss stops improving, and one step of fit is
    optax applied by hand to float64 gradients and loss of the same parameters."""
    import nnjax

    x, y = _plateau_problem(rng)
    tx = optax.chain(optax.sgd(0.1), optax.contrib.reduce_on_plateau(patience=3, factor=0.5))
    kw = dict(loss="mse", optimizer=tx, batch_size=len(x), shuffle=False, diagnostics=False)
    net = nnjax.MLP((3, 1))  # a linear model, one full batch a step: the step's loss is the epoch's
    # 200 full-batch steps: gradient descent at 0.1 reaches the noise floor well before, whatever the draw
    # (60 steps left some draws still improving by more than the plateau's tolerance)
    result = nnjax.fit(key, net, (x, y), epochs=200, **kw)
    plateau = result.opt_state[1]
    assert float(plateau.scale) <= 0.5 < 1.0  # the floor was reached, the steps were scaled down
    loss = np.asarray(result.history["loss"])
    assert loss[-1] < 0.5 * loss[0]  # and it trained before

    # One more step by hand: the loss and its gradient in float64, optax's update on them.
    w, b = (np.asarray(result.params[0][k], np.float64) for k in ("w", "b"))
    r = x @ w + b - y[:, None]
    value = np.mean(r ** 2)
    grads = [{"w": 2 * x.T @ r / len(x), "b": 2 * r.mean(0)}]
    grads = jax.tree.map(lambda g: jnp.asarray(g, jnp.float32), grads)
    updates, want_state = tx.update(grads, result.opt_state, result.params, value=jnp.float32(value))
    want = optax.apply_updates(result.params, updates)
    again = nnjax.fit(None, net, (x, y), epochs=1, resume=result, **kw)  # one step more
    for k in ("w", "b"):
        np.testing.assert_allclose(again.params[0][k], want[0][k], rtol=1e-5, atol=1e-6)
    got_state = again.opt_state[1]
    assert float(got_state.scale) == float(want_state[1].scale)
    assert int(got_state.plateau_count) == int(want_state[1].plateau_count)
    np.testing.assert_allclose(got_state.best_value, want_state[1].best_value, rtol=1e-5)
    np.testing.assert_allclose(got_state.avg_value, want_state[1].avg_value, rtol=1e-5)
    # A population passes each member's own loss (vmapped): every member's scale drops too.
    members = nnjax.fit_population(jax.random.split(key, 2), net, (x, y), epochs=200, **kw)
    assert np.all(np.asarray(members.opt_state[1].scale) <= 0.5)


def test_a_transformation_without_extra_arguments_is_called_as_before(rng):
    """A plain GradientTransformation (no ``value`` parameter) still trains: the value is dropped."""
    calls = []

    def update(updates, state, params=None):
        calls.append(1)
        return jax.tree.map(lambda g: -0.1 * g, updates), state

    plain = optax.GradientTransformation(lambda params: optax.EmptyState(), update)
    params = {"w": jnp.ones(2)}
    updates, _ = optim.update(plain, params, plain.init(params), params, value=jnp.float32(1.0))
    assert calls
    np.testing.assert_array_equal(updates["w"], jnp.full(2, -0.1))
