"""Host work of a fit paid once: checks that copy nothing already right, device data kept where it is."""

import jax
import numpy as np
import optax
import pytest

import nnjax
from nnjax._base import validation
from nnjax.train import fitting


def test_float32_features_are_checked_without_a_copy(rng):
    x = rng.normal(size=(50, 3)).astype(np.float32)
    assert validation.check_features(x) is x
    wide = x.astype(np.float64)
    np.testing.assert_array_equal(validation.check_features(wide), x)


def test_finite_values_whose_sum_overflows_pass_and_bad_entries_are_counted():
    big = np.full((4, 2), 3e38, np.float32)  # every entry finite, their float32 sum is not
    assert validation.check_features(big) is big
    bad = big.copy()
    bad[2, 1], bad[3, 0] = np.nan, -np.inf
    with pytest.raises(ValueError, match=r"x: expected finite values, got 2 NaN or infinite entries \(first in row 2\)"):
        validation.check_features(bad)
    with pytest.raises(ValueError, match="float32 range"):
        validation.check_features(np.array([[1.0, -1e300]]))


def test_device_data_is_used_as_given_and_host_data_is_transferred(rng, key):
    x = rng.normal(size=(40, 3)).astype(np.float32)
    y = (x[:, 0] > 0).astype(np.int32)
    xd, yd = jax.device_put(x), jax.device_put(y)
    settings = dict(loss="softmax_cross_entropy", optimizer=optax.sgd(0.1), epochs=2, batch_size=8,
                    validation=(xd, yd))
    net = nnjax.MLP((3, 4, 2))
    on_device = fitting.plan(key, net, (xd, yd), **settings)
    assert on_device.data.x is xd and on_device.data.y is yd and on_device.data.validation[0] is xd
    from_host = fitting.plan(key, net, (x, y), **settings)
    assert isinstance(from_host.data.x, jax.Array)
    a, b = on_device.run(on_device.ts), from_host.run(from_host.ts)
    jax.tree.map(np.testing.assert_array_equal, a.params, b.params)
    # labels given as floats are checked into int32 and transferred, not kept
    floats = fitting.plan(key, net, (xd, jax.device_put(y.astype(np.float32))), **settings)
    assert floats.data.y.dtype == np.int32
    x[5, 1] = np.nan
    with pytest.raises(ValueError, match="x: expected finite values"):
        fitting.plan(key, net, (jax.device_put(x), yd), **settings)
