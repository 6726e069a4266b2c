"""Host arrays that a CPU device reads in place: NumPy arrays aligned to :data:`ALIGNMENT` bytes.

On the CPU backend ``jax.device_put`` uses a NumPy array's own memory, without a copy, when the
array is C-contiguous and its data starts on a 64-byte boundary; any other array is copied.
NumPy aligns large arrays to 16 bytes only, so a float32 array of 1.6 GB given to a fit is
held twice: the caller's array and the device's copy. The arrays nnjax makes on the host (the
datasets, CSV and NPZ files, standardised features, bag-of-words counts, float32 conversions)
are aligned, so they go to the device in place; :func:`empty` makes such an array for data of
your own (fill it, then fit on it).

An array used in place is shared with the device: do not write into it while a fit that uses it
is running (the same rule as ``jax.device_put`` on the CPU).

Example:
  >>> import numpy as np
  >>> from nnjax._base import arrays
  >>> a = arrays.aligned(np.arange(6.0).reshape(2, 3))
  >>> a.dtype, a.ctypes.data % arrays.ALIGNMENT, a.tolist()
  (dtype('float32'), 0, [[0.0, 1.0, 2.0], [3.0, 4.0, 5.0]])
  >>> arrays.aligned(a) is a
  True
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["ALIGNMENT", "aligned", "empty", "is_aligned"]

#: Bytes: where the data of an array the CPU device uses in place must start.
ALIGNMENT = 64


def empty(shape: Any, dtype: Any = np.float32) -> np.ndarray:
    """An uninitialised C-contiguous array whose data starts on an :data:`ALIGNMENT`-byte boundary."""
    dtype = np.dtype(dtype)
    shape = (shape,) if np.isscalar(shape) else tuple(shape)
    count = int(np.prod(shape, dtype=np.int64))
    raw = np.empty(count * dtype.itemsize + ALIGNMENT, np.uint8)
    start = -raw.ctypes.data % ALIGNMENT
    return raw[start:start + count * dtype.itemsize].view(dtype).reshape(shape)


def is_aligned(a: np.ndarray) -> bool:
    """Whether ``a`` is C-contiguous and starts on an :data:`ALIGNMENT`-byte boundary (an empty array
    always is: it has no data)."""
    return bool(a.flags.c_contiguous) and (a.size == 0 or a.ctypes.data % ALIGNMENT == 0)


def aligned(a: Any, dtype: Any = np.float32) -> np.ndarray:
    """``a`` as an aligned C-contiguous array of ``dtype``: ``a`` itself when it already is one,
    else one copy (the copy a dtype conversion makes anyway)."""
    a = np.asarray(a)
    dtype = np.dtype(dtype)
    if a.dtype == dtype and is_aligned(a):
        return a
    out = empty(a.shape, dtype)
    np.copyto(out, a, casting="unsafe")
    return out
