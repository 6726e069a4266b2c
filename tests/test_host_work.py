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


# ----------------------------------------------------------------------------------------------
# Host arrays a CPU device reads in place (nnjax._base.arrays)

from nnjax._base import arrays  # noqa: E402


def _pointer(a) -> int:
    return a.unsafe_buffer_pointer() if isinstance(a, jax.Array) else a.ctypes.data


@pytest.mark.parametrize("shape, dtype", [((7, 3), np.float32), ((5,), np.int32), ((0, 4), np.float32), (3, np.float64)])
def test_empty_and_aligned_arrays_start_on_the_boundary_and_keep_their_values(rng, shape, dtype):
    a = arrays.empty(shape, dtype)
    assert arrays.is_aligned(a) and (a.size == 0 or a.ctypes.data % arrays.ALIGNMENT == 0)
    assert a.shape == ((shape,) if isinstance(shape, int) else shape) and a.dtype == dtype
    source = rng.normal(size=a.shape) * 10
    b = arrays.aligned(source, dtype)
    assert arrays.is_aligned(b) and b.dtype == dtype
    np.testing.assert_array_equal(b, source.astype(dtype))
    assert arrays.aligned(b, dtype) is b  # already right: no copy
    strided = arrays.aligned(np.asfortranarray(rng.normal(size=(4, 3))), np.float32)  # not C-ordered: one copy
    assert arrays.is_aligned(strided)


def test_what_nnjax_makes_on_the_host_is_aligned(tmp_path):
    ds = nnjax.data.load_dataset("iris")
    blobs = nnjax.data.load_dataset("blobs")
    path = tmp_path / "t.csv"
    path.write_text("a,b,label\n1,2,x\n3,4,y\n5,6,x\n")
    scaler, z = nnjax.data.standardize(ds.x)
    bow = nnjax.data.BagOfWords().fit(["a b", "b c"])
    made = {"dataset x": ds.x, "dataset y": ds.y, "generated x": blobs.x, "csv x": nnjax.data.load_csv(path, "label").x,
            "standardised": z, "inverse": scaler.inverse_transform(z), "bag of words": bow.transform(["a c", "b"]),
            "float64 checked": validation.check_features(np.ones((3, 2)))}
    for what, a in made.items():
        assert arrays.is_aligned(a), what


def test_a_fit_reads_aligned_host_data_in_place_on_the_cpu(rng, key):
    probe = arrays.aligned(np.ones((64, 4)))
    if jax.default_backend() != "cpu" or _pointer(jax.device_put(probe)) != _pointer(probe):
        pytest.skip(f"this JAX ({jax.__version__}, {jax.default_backend()}) copies even aligned host arrays to the device")
    x = arrays.aligned(rng.normal(size=(40, 3)))
    unaligned = np.empty(40 * 3 + 1, np.float32)[1:].reshape(40, 3)  # 4 bytes off any 64-byte boundary
    unaligned[:] = x
    y = (x[:, 0] > 0).astype(np.int32)
    settings = dict(loss="softmax_cross_entropy", optimizer=optax.sgd(0.1), epochs=1, batch_size=8)
    net = nnjax.MLP((3, 4, 2))
    assert _pointer(fitting.plan(key, net, (x, y), **settings).data.x) == _pointer(x)  # used in place
    assert _pointer(fitting.plan(key, net, (unaligned, y), **settings).data.x) != _pointer(unaligned)  # copied
    a = nnjax.fit(key, net, (x, y), **settings)
    b = nnjax.fit(key, net, (unaligned, y), **settings)
    jax.tree.map(np.testing.assert_array_equal, a.params, b.params)
