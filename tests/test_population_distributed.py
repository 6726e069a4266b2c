"""A population split over the processes of a jax.distributed run equals one process training it all.

Two real processes on 127.0.0.1 (gloo CPU collectives), and the split/gather logic in one
process with the process index, count and gather injected.
"""

import os
import socket
import sys
import textwrap
from pathlib import Path

import jax
import numpy as np
import pytest

from nnjax import parallel, population

ROOT = Path(__file__).resolve().parents[1]
LR = np.array([0.05, 0.1, 0.2, 0.3, 0.5], np.float32)  # 5 members over 2 or 3 processes: uneven shares
SETTINGS = dict(optimizer="sgd", loss="softmax_cross_entropy", epochs=3, batch_size=16, diagnostics=False)

# Every process runs this with its own process id; process i writes its whole-population result.
_WORKER = textwrap.dedent(
    """
    import sys
    import numpy as np
    from nnjax import parallel

    port, rank, out = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
    parallel.initialize(f"127.0.0.1:{port}", 2, rank)
    import jax
    import nnjax
    sys.path.insert(0, sys.argv[4])
    from test_population_distributed import LR, SETTINGS, make_problem

    keys, net, data, validation = make_problem()
    result = parallel.fit_population_distributed(keys, net, data, learning_rate=LR, validation=validation,
                                                 **SETTINGS)
    leaves = jax.tree.leaves(jax.tree.map(lambda a: jax.random.key_data(a)
                                          if jax.dtypes.issubdtype(a.dtype, jax.dtypes.prng_key) else a, result))
    np.savez(out, processes=jax.process_count(), share=parallel.member_share(len(LR), rank, 2),
             **{f"leaf_{i}": np.asarray(a) for i, a in enumerate(leaves)})
    """
)


def make_problem():
    """Tiny data and keys, the same in every process."""
    import nnjax

    rng = np.random.default_rng(7)
    x = rng.normal(size=(56, 4)).astype(np.float32)
    y = (x[:, 0] + x[:, 1] > 0).astype(np.int32) + (x[:, 2] > 0.5).astype(np.int32)
    keys = jax.random.split(jax.random.key(3), len(LR))
    return keys, nnjax.MLP((4, 8, 3), dropout=0.1), (x[:48], y[:48]), (x[48:], y[48:])


def _leaves(result):
    return [np.asarray(jax.random.key_data(a) if jax.dtypes.issubdtype(a.dtype, jax.dtypes.prng_key) else a)
            for a in jax.tree.leaves(result)]


@pytest.fixture(scope="module")
def one_process():
    keys, net, data, validation = make_problem()
    return population.fit_population(keys, net, data, learning_rate=LR, validation=validation, **SETTINGS)


def _assert_equal_to_float32_rounding(got, want):
    assert len(got) == len(want)
    for a, b in zip(got, want):
        assert a.shape == b.shape and a.dtype == b.dtype
        if np.issubdtype(a.dtype, np.floating):
            np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
        else:
            np.testing.assert_array_equal(a, b)


def test_member_share_covers_every_member_once_in_order():
    for size in (1, 4, 5, 8):
        for count in (1, 2, 3):
            blocks = [parallel.member_share(size, i, count) for i in range(count)]
            assert len({len(b) for b in blocks}) == 1  # one shape for the gather
            assert np.concatenate(blocks)[:size].tolist() == list(range(size))
    with pytest.raises(ValueError, match="process_index"):
        parallel.member_share(4, 2, 2)


def test_shares_gathered_in_one_process_equal_the_whole_population(one_process):
    keys, net, data, validation = make_problem()
    count = 3
    local = {}

    def capture(index):
        def gather(tree):
            local[index] = tree
            return jax.tree.map(lambda a: np.stack([a] * count), tree)  # a placeholder; only capturing
        return gather

    for i in range(count):
        parallel.fit_population_distributed(keys, net, data, learning_rate=LR, validation=validation,
                                            process_index=i, process_count=count, gather=capture(i), **SETTINGS)
    assert np.asarray(local[2].history["loss"]).shape == (2, 3)  # members 4 and 4 again

    def all_gather(tree):
        return jax.tree.map(lambda *parts: np.stack(parts), *[local[i] for i in range(count)])

    whole = parallel.fit_population_distributed(keys, net, data, learning_rate=LR, validation=validation,
                                                process_index=1, process_count=count, gather=all_gather, **SETTINGS)
    assert jax.tree.structure(whole) == jax.tree.structure(one_process)
    _assert_equal_to_float32_rounding(_leaves(whole), _leaves(one_process))
    with pytest.raises(ValueError, match="mesh"):
        parallel.fit_population_distributed(keys, net, data, mesh=parallel.make_mesh(), **SETTINGS)


def test_learning_rate_auto_is_one_rate_from_the_whole_population(caplog):
    """Every process finds the rate from the whole population (its first key), not from its own share."""
    from nnjax import search
    keys, net, data, _ = make_problem()
    local = {}

    def capture(tree):
        local["tree"] = tree
        return jax.tree.map(lambda a: np.stack([a, a]), tree)

    parallel.fit_population_distributed(keys, net, data, learning_rate="auto", l2=[0.0, 1e-4, 1e-4, 1e-3, 1e-3],
                                        process_index=1, process_count=2, gather=capture, **SETTINGS)
    expected = search.lr_find(jax.random.fold_in(keys[0], 0x1F), net, data, l2=1e-4, **SETTINGS).suggestion
    rates = [np.asarray(n.hyperparams["learning_rate"]) for n in jax.tree.leaves(
        local["tree"].train_state.opt_state, is_leaf=lambda n: hasattr(n, "hyperparams")) if hasattr(n, "hyperparams")]
    (rate,) = rates
    np.testing.assert_allclose(rate, np.full(3, expected), rtol=1e-5)  # process 1 holds members 3, 4 (+ padding)
    own_share = search.lr_find(jax.random.fold_in(keys[3], 0x1F), net, data, l2=1e-3, **SETTINGS).suggestion
    assert not np.isclose(own_share, expected, rtol=1e-5)  # what a per-process rate would have been differs


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_two_processes_on_127_0_0_1_equal_one_process(tmp_path, one_process, run_processes):
    script = tmp_path / "worker.py"
    script.write_text(_WORKER)
    env = {k: v for k, v in os.environ.items() if k not in ("XLA_FLAGS", "JAX_PLATFORMS")}
    env.update(PYTHONPATH=os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")]), JAX_PLATFORMS="cpu",
               XLA_FLAGS="--xla_backend_optimization_level=0")
    port = _free_port()
    run_processes([[sys.executable, str(script), str(port), str(i), str(tmp_path / f"out{i}.npz"), str(ROOT / "tests")]
                   for i in range(2)], env)
    want = _leaves(one_process)
    outs = [np.load(tmp_path / f"out{i}.npz") for i in range(2)]
    assert [int(o["processes"]) for o in outs] == [2, 2]
    assert [o["share"].tolist() for o in outs] == [[0, 1, 2], [3, 4, 4]]
    for out in outs:  # every process holds the whole population, as one process computes it
        _assert_equal_to_float32_rounding([out[f"leaf_{i}"] for i in range(len(want))], want)
