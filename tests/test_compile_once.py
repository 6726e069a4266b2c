"""One training program per problem: compiled by value, reused across equal objects, cached on disk."""

import os
import subprocess
import sys
import textwrap
import warnings

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import nnjax
from nnjax import fitting

# Backend compiles by function name, from JAX's own monitoring events (registered once).
_COMPILES: list[str] = []


def _on_event(event: str, duration: float, **kwargs) -> None:
    if event == "/jax/core/compile/backend_compile_duration":
        _COMPILES.append(str(kwargs.get("fun_name", "")))


jax.monitoring.register_event_duration_secs_listener(_on_event)


def _run_compiles(since: int) -> int:
    return sum("(_train_program)" in name or name == "_train_program" for name in _COMPILES[since:])


@pytest.fixture
def traces(monkeypatch):
    """Counts how often the training loop is traced (a compile follows every trace)."""
    calls = []
    original = fitting.run

    def counting(*args, **kwargs):
        calls.append(1)
        return original(*args, **kwargs)

    monkeypatch.setattr(fitting, "run", counting)
    return calls


def _problem(rng, n=40, d=5, k=3):
    return rng.normal(size=(n, d)).astype(np.float32), rng.integers(0, k, size=n)


def test_fresh_but_equal_optimizer_and_net_reuse_the_program(traces, rng):
    x, y = _problem(rng)
    results = []
    for seed in range(3):  # a fresh optax object, a fresh MLP and a new key on every call
        net = nnjax.MLP((5, 7, 3), activation="tanh", output="softmax")
        results.append(nnjax.fit(jax.random.key(seed), net, (x, y), loss="softmax_cross_entropy",
                                 optimizer=optax.chain(optax.clip_by_global_norm(1.0), optax.sgd(0.05, momentum=0.9)),
                                 epochs=6, batch_size=8))
    assert len(traces) == 1
    # ... and the shared program still computes each call's own run
    assert not np.allclose(results[0].params[0]["w"], results[1].params[0]["w"])


def test_fit_population_with_a_fresh_but_equal_optimizer_compiles_once(rng):
    x, y = _problem(rng)
    keys = jax.random.split(jax.random.key(0), 3)
    since = len(_COMPILES)
    results = []
    for lr in (0.05, 0.05, 0.2):  # fresh optax objects: two equal, then another learning rate
        results.append(nnjax.population.fit_population(
            keys, nnjax.MLP((5, 7, 3), activation="tanh", output="softmax"), (x, y), loss="softmax_cross_entropy",
            optimizer=optax.sgd(lr, momentum=0.9), epochs=3, batch_size=8))
    programs = [n for n in _COMPILES[since:] if "_fit_members_traced" in n]
    assert len(programs) == 2, programs  # the equal optimizer reused the first program
    np.testing.assert_array_equal(np.asarray(results[0].history["loss"]), np.asarray(results[1].history["loss"]))
    assert not np.allclose(np.asarray(results[0].history["loss"]), np.asarray(results[2].history["loss"]))


def test_a_different_optimizer_setting_is_a_different_program(traces, rng):
    x, y = _problem(rng)
    net = nnjax.MLP((5, 7, 3), output="softmax")
    common = dict(loss="softmax_cross_entropy", epochs=3, batch_size=8)
    a = nnjax.fit(jax.random.key(0), net, (x, y), optimizer=optax.sgd(0.01), **common)
    b = nnjax.fit(jax.random.key(0), net, (x, y), optimizer=optax.sgd(0.5), **common)
    assert len(traces) == 2  # the literal learning rate is part of what optax.sgd(lr) computes
    assert not np.allclose(a.params[0]["w"], b.params[0]["w"])


def test_named_optimizer_learning_rates_are_traced(traces, rng):
    x, y = _problem(rng)
    net = nnjax.MLP((5, 7, 3), output="softmax")
    finals = []
    for lr in (1e-3, 1e-2, 1e-1, 0.3):
        r = nnjax.fit(jax.random.key(1), net, (x, y), loss="softmax_cross_entropy", optimizer="momentum",
                      learning_rate=lr, epochs=4, batch_size=8)
        finals.append(float(r.history["loss"][-1]))
    assert len(traces) == 1
    assert len(set(finals)) == 4  # four different runs came out of one program


def test_nearby_epoch_counts_share_one_program_and_match_exact_runs(traces, rng):
    x, y = _problem(rng)
    net = nnjax.MLP((5, 4, 3), output="softmax")
    common = dict(loss="softmax_cross_entropy", optimizer=optax.adam(0.01), batch_size=8)
    runs = {e: nnjax.fit(jax.random.key(2), net, (x, y), epochs=e, **common) for e in (5, 6, 7, 8)}
    assert len(traces) == 1 and fitting.scan_length(5) == fitting.scan_length(8) == 8
    for e, r in runs.items():
        assert r.history["loss"].shape == (e,) and int(r.train_state.epoch) == e
    # a run of 5 then 3 more equals the run of 8, bit for bit (the skipped slots change nothing)
    more = nnjax.fit(None, net, (x, y), epochs=3, resume=runs[5], **common)
    np.testing.assert_array_equal(more.params[0]["w"], runs[8].params[0]["w"])
    np.testing.assert_array_equal(np.concatenate([runs[5].history["loss"], more.history["loss"]]),
                                  runs[8].history["loss"])


def test_grid_search_over_learning_rates_compiles_the_training_program_at_most_twice():
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.model_selection import GridSearchCV

    data = nnjax.data.load_dataset("digits")
    before = len(_COMPILES)
    search = GridSearchCV(nnjax.sklearn.MLPClassifier(hidden_layer_sizes=(16,), max_iter=3, random_state=0),
                          {"learning_rate_init": [1e-3, 1e-2, 1e-1]}, cv=3)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        search.fit(data.x, data.y)
    assert 1 <= _run_compiles(before) <= 2, _COMPILES[before:]  # compiled, and at most twice
    scores = search.cv_results_["mean_test_score"]
    assert len(set(np.round(scores, 6))) > 1  # the learning rates did reach the runs


def test_persistent_cache_serves_a_new_process(tmp_path):
    script = textwrap.dedent("""
        import jax, numpy as np, optax, nnjax
        hits = []
        jax.monitoring.register_event_listener(
            lambda event, **kw: hits.append(1) if event == "/jax/compilation_cache/cache_hits" else None)
        x = np.random.default_rng(0).normal(size=(32, 4)).astype(np.float32)
        y = (x[:, 0] > 0).astype(np.float32)
        net = nnjax.MLP((4, 8, 1), output="sigmoid")
        nnjax.fit(jax.random.key(0), net, (x, y), loss="binary_cross_entropy", optimizer=optax.sgd(0.1),
                  epochs=3, batch_size=8)
        print("HITS", len(hits))
    """)
    env = {k: v for k, v in os.environ.items() if not k.startswith("JAX_COMPILATION_CACHE")}
    env["NNJAX_CACHE_DIR"] = str(tmp_path / "xla")
    runs = [subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=300)
            for _ in range(2)]
    for r in runs:
        assert r.returncode == 0, r.stderr[-2000:]
    hits = [int(r.stdout.split("HITS")[-1]) for r in runs]
    assert any((tmp_path / "xla").iterdir())  # the first process wrote compiled programs
    assert hits[1] > hits[0] and hits[1] >= 1, hits  # the second loaded them


def test_cache_can_be_switched_off():
    from nnjax import cache

    for value in ("off", "0", "none", "False", ""):
        assert cache.directory_from_env({"NNJAX_CACHE_DIR": value}) is None
    assert cache.directory_from_env({"XDG_CACHE_HOME": "/x"}).as_posix() == "/x/nnjax/xla"



def test_enable_caches_every_program_under_a_size_cap(tmp_path, monkeypatch):
    from nnjax import cache

    names = ("jax_compilation_cache_dir", "jax_persistent_cache_min_compile_time_secs", "jax_compilation_cache_max_size")
    before = {name: getattr(jax.config, name) for name in names}
    has_filelock = cache._has_filelock()
    try:
        path = cache.enable(tmp_path / "a" / "xla")
        assert path.is_dir() and jax.config.jax_compilation_cache_dir == str(path)
        assert jax.config.jax_persistent_cache_min_compile_time_secs == 0.0
        assert jax.config.jax_compilation_cache_max_size == (cache.MAX_BYTES if has_filelock else -1)
        cache.enable(tmp_path / "b", min_compile_seconds=0.5, max_bytes=None)
        assert jax.config.jax_compilation_cache_max_size == -1
        assert jax.config.jax_persistent_cache_min_compile_time_secs == 0.5
        # without filelock JAX would refuse a capped cache (and silently compile without one): no cap then
        monkeypatch.setattr(cache, "_has_filelock", lambda: False)
        cache.enable(tmp_path / "c")
        assert jax.config.jax_compilation_cache_max_size == -1
    finally:
        for name, value in before.items():
            jax.config.update(name, value)

# ---- one core for every model --------------------------------------------------------------

def _linear_init(key):
    return {"w": 0.1 * jax.random.normal(key, (4, 2)), "b": jnp.zeros(2)}


def _linear_apply(params, state, x, *, key=None, train=False):
    return x @ params["w"] + params["b"], state


def test_a_model_of_your_own_trains_through_fit_populations_and_checkpoints(rng, tmp_path):
    from nnjax import checkpoint

    x = rng.normal(size=(64, 4)).astype(np.float32)
    true_w = rng.normal(size=(4, 2)).astype(np.float32)
    y = x @ true_w
    model = nnjax.Model(_linear_init, _linear_apply, n_inputs=4, n_outputs=2, name="linear")
    common = dict(loss="mse", optimizer=optax.adam(0.05), epochs=80, batch_size=16)
    r = nnjax.fit(jax.random.key(0), model, (x, y), **common)
    np.testing.assert_allclose(r.params["w"], true_w, atol=0.05)
    assert r.history["layer_grad_norm"].shape == (80, 1)  # diagnostics read the "w" matrices
    pop = nnjax.fit_population(jax.random.split(jax.random.key(0), 3), model, (x, y), **common)
    assert pop.params["w"].shape == (3, 4, 2)
    np.testing.assert_allclose(pop.params["w"][0], nnjax.fit(jax.random.split(jax.random.key(0), 3)[0], model,
                                                              (x, y), **common).params["w"], rtol=1e-4, atol=1e-5)
    checkpoint.save(tmp_path / "ckpt", r)
    back = checkpoint.restore(tmp_path / "ckpt", like=r)
    np.testing.assert_array_equal(back.params["w"], r.params["w"])
    with pytest.raises(ValueError, match="x: expected 4 features"):
        nnjax.fit(jax.random.key(0), model, (x[:, :3], y), **common)


def test_text_model_early_stops_and_resumes_bit_for_bit(rng):
    from nnjax import text

    ids = rng.integers(2, 12, size=(120, 6))
    y = (ids == 5).any(axis=1).astype(np.int32)
    bag = text.EmbeddingBag(n_ids=12, dim=4)
    common = dict(loss="binary_cross_entropy", optimizer=optax.adam(0.05), batch_size=16,
                  validation=(ids[:30], y[:30]))
    whole = nnjax.fit(jax.random.key(0), bag, (ids, y), epochs=10, **common)
    half = text.fit_text(jax.random.key(0), bag, (ids, y), epochs=4, **common)
    rest = text.fit_text(None, bag, (ids, y), epochs=6, resume=half, **common)
    np.testing.assert_array_equal(rest.params["embedding"], whole.params["embedding"])
    assert whole.history["layer_grad_norm"].shape == (10, 2)  # table + output layer
    stopped = nnjax.fit(jax.random.key(0), bag, (ids, y), epochs=200,
                        early_stopping=nnjax.EarlyStopping(patience=2, min_delta=1e9), **common)
    assert int(stopped.epochs_run) == 3  # no gain ever counts: epochs 1, 2, 3 then stop


def test_a_first_fit_compiles_the_start_and_the_training_program_only(rng):
    """The key split, the draw, the model's start state and the optimizer's state are two small
    programs, not one per operation and leaf shape (an eager chain compiled ~10 for Adam)."""
    x, y = _problem(rng)
    net = nnjax.MLP((5, 11, 3), output="softmax")  # a topology no other test compiles
    key = jax.random.key(0)
    since = len(_COMPILES)
    nnjax.fit(key, net, (x, y), loss="softmax_cross_entropy", optimizer="adam",
              learning_rate=0.0123, epochs=2, batch_size=8)
    names = _COMPILES[since:]
    assert _run_compiles(since) == 1 and len(names) <= 3, names


def test_optimizer_start_state_is_shared_by_equal_optimizers_only():
    from nnjax.train import optim

    params = nnjax.init(jax.random.key(0), nnjax.MLP((3, 4, 2)))
    cases = [optax.adam(1e-3), optax.adam(1e-3), optax.chain(optax.scale(2.0), optax.adam(1e-3)),
             optim.build("momentum", 0.1), optim.build("momentum", 0.3), optax.sgd(0.1)]
    wants = [tx.init(params) for tx in cases]  # op by op
    since = len(_COMPILES)
    gots = [optim.initial_state(tx, params) for tx in cases]
    # one program per distinct computation: adam twice shares, the two momentum rates do not
    assert len(_COMPILES) - since <= 5, _COMPILES[since:]
    for got, want in zip(gots, wants):
        assert jax.tree.structure(got) == jax.tree.structure(want)  # scale's empty state is kept apart
        for a, b in zip(jax.tree.leaves(got), jax.tree.leaves(want)):
            np.testing.assert_array_equal(a, b)  # the injected learning rates are each tx's own
