"""Every kind of model through the one core: fit -> checkpoint -> load, continued bit for bit.

The compiled loop trains any ``(init, apply)`` model; this contract runs each kind the package
offers (``nnjax.MLP``, a ``nnjax.Model`` of your own, the text ``EmbeddingBag``, and a Flax Linen
module through ``flax_interop``) through the same steps: training lowers the loss, a checkpoint
restores the result exactly (so training continues bit for bit as if it had never been saved), and
the model loaded back predicts what the trained one did.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import nnjax
from nnjax import checkpoint, flax_interop, text

ROWS = 48
OPTIMIZER = optax.adam(0.05)
LINEN_NET = nnjax.MLP((3, 6, 1))


def _linear_init(key):
    return {"w": 0.1 * jax.random.normal(key, (3, 1)), "b": jnp.zeros(1)}


def _linear_apply(params, state, x, *, key=None, train=False):
    return x @ params["w"] + params["b"], state


_LINEN = flax_interop.linen_module(LINEN_NET)


def _linen_init(key):
    return _LINEN.init(key, jnp.zeros((1, 3)))["params"]


def _linen_apply(params, state, x, *, key=None, train=False):
    return _LINEN.apply({"params": params}, x), state


def _kinds(rng):
    """{kind: (model, data, loss, predict(params, x))}: one small problem per kind."""
    x = rng.normal(size=(ROWS, 3)).astype(np.float32)
    classes = (x @ [1.0, -1.0, 0.5] > 0).astype(np.int32)
    ids = rng.integers(2, 12, size=(ROWS, 5)).astype(np.int32)
    bag = text.EmbeddingBag(n_ids=12, dim=4, n_outputs=1, output="sigmoid")
    mlp = nnjax.MLP((3, 6, 2), output="softmax")
    return {
        "MLP": (mlp, (x, classes), "softmax_cross_entropy", lambda p, a: nnjax.apply(p, a, mlp)),
        "Model": (nnjax.Model(_linear_init, _linear_apply, n_inputs=3, n_outputs=1), (x, x @ [1.0, -2.0, 0.5]), "mse",
                  lambda p, a: _linear_apply(p, {}, a)[0]),
        "EmbeddingBag": (bag, (ids, (ids[:, 0] > 6).astype(np.float32)), "binary_cross_entropy",
                         lambda p, a: text.apply(p, a, bag)),
        "Flax": (nnjax.Model(_linen_init, _linen_apply, n_inputs=3, n_outputs=1), (x, classes.astype(np.float32)),
                 "binary_cross_entropy", lambda p, a: _linen_apply(p, {}, a)[0]),
    }


KINDS = ("MLP", "Model", "EmbeddingBag", "Flax")


def _fit(model, data, loss, *, key=None, resume=None):
    return nnjax.fit(key, model, data, loss=loss, optimizer=OPTIMIZER, epochs=3, batch_size=16, resume=resume)


def _bits(tree):
    return [np.asarray(jax.random.key_data(a) if jax.dtypes.issubdtype(a.dtype, jax.dtypes.prng_key) else a).tobytes()
            for a in jax.tree.leaves(tree)]


@pytest.mark.parametrize("kind", KINDS)
def test_every_model_kind_fits_checkpoints_and_loads(kind, key, rng, tmp_path):
    model, data, loss, predict = _kinds(rng)[kind]
    result = _fit(model, data, loss, key=key)
    history = np.asarray(result.history["loss"])
    assert np.all(np.isfinite(history)) and history[-1] < history[0], history

    checkpoint.save(tmp_path, result)
    restored = checkpoint.restore(tmp_path, like=result)
    assert _bits(restored) == _bits(result)
    # continued from the checkpoint as from memory: the same steps, bit for bit
    assert _bits(_fit(model, data, loss, resume=restored)) == _bits(_fit(model, data, loss, resume=result))

    x = data[0]
    want = np.asarray(predict(result.params, x))
    if kind == "MLP":  # nnjax.load reads a checkpoint of an MLP for its topology
        loaded = nnjax.load(tmp_path, net=model)
        np.testing.assert_array_equal(loaded.logits(x), want)
        np.testing.assert_array_equal(loaded.predict(x), want.argmax(1))
    elif kind == "Flax":  # the Linen parameters come back as the MLP they describe
        params, _ = flax_interop.from_linen({"params": restored.params})
        np.testing.assert_allclose(nnjax.apply(params, x, LINEN_NET), want, atol=1e-6)
    np.testing.assert_array_equal(predict(restored.params, x), want)
