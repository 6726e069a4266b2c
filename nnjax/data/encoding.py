"""Encoding labels and scaling features on the host, before the arrays go to a device.

* :func:`one_hot` turns integer labels into indicator rows.
* :func:`encode_labels` turns arbitrary labels (strings, say) into codes 0..k-1.
* :class:`Standardizer` centres and scales every feature, z = (x - mean) / scale, with the mean
  and the standard deviation of the *training* data only, so no information leaks from the
  validation or test data into training.

Example:
  >>> codes, classes = encode_labels(["cat", "dog", "cat"])
  >>> codes, classes
  (array([0, 1, 0], dtype=int32), array(['cat', 'dog'], dtype='<U3'))
  >>> one_hot(codes)
  array([[1., 0.],
         [0., 1.],
         [1., 0.]], dtype=float32)
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from nnjax._base import arrays
from nnjax._base.validation import check_features, check_labels

__all__ = ["Standardizer", "encode_labels", "one_hot", "standardize"]

# A column whose standard deviation is this small relative to its mean is treated as constant:
# the mean of n equal float values is not always exactly that value, so its std is not always 0,
# and a spread below float32's resolution of the mean is rounding, not signal, once the features
# are float32. A standard deviation below float32's smallest normal number would not survive as a
# float32 scale at all.
_CONSTANT_RTOL = 10 * float(np.finfo(np.float32).eps)
_SMALLEST_SCALE = float(np.finfo(np.float32).tiny)


def one_hot(labels: Any, n_classes: int | None = None, dtype: Any = np.float32) -> np.ndarray:
    """Indicator rows for integer labels: ``out[i, labels[i]] = 1``, every other entry 0.

    Args:
      labels: integer labels in ``[0, n_classes)``, shape (n,).
      n_classes: the number of columns; by default ``max(labels) + 1``.
      dtype: the dtype of the result.

    Returns:
      An array of shape (n, n_classes); ``one_hot(y).argmax(axis=1)`` gives ``y`` back.

    Example:
      >>> one_hot([2, 0], n_classes=3)
      array([[0., 0., 1.],
             [1., 0., 0.]], dtype=float32)
    """
    codes = check_labels(labels, n_classes, name="labels")
    width = int(codes.max()) + 1 if n_classes is None else n_classes
    out = np.zeros((len(codes), width), dtype=dtype)
    out[np.arange(len(codes)), codes] = 1
    return out


def encode_labels(y: Any) -> tuple[np.ndarray, np.ndarray]:
    """Codes 0..k-1 for arbitrary labels, like ``np.unique(y, return_inverse=True)``.

    Args:
      y: a 1-D sequence of labels: strings, numbers, anything NumPy can sort.

    Returns:
      ``(codes, classes)``: ``codes`` an int32 array of shape (n,) and ``classes`` the sorted
      distinct labels, so that ``classes[codes]`` equals ``y``.

    Raises:
      ValueError: ``y`` is empty, not 1-D, holds NaN, or its labels cannot be sorted.

    Example:
      >>> encode_labels([3, 1, 3])
      (array([1, 0, 1], dtype=int32), array([1, 3]))
    """
    arr = np.asarray(y)
    if arr.ndim == 2 and arr.shape[1] == 1:
        arr = arr[:, 0]
    if arr.ndim != 1 or len(arr) == 0:
        raise ValueError(f"y: expected a non-empty 1-D sequence of labels, got shape {arr.shape}")
    if arr.dtype.kind == "f" and not np.isfinite(arr).all():
        raise ValueError("y: expected finite labels, got NaN or infinite values")
    try:
        classes, codes = np.unique(arr, return_inverse=True)
    except TypeError as err:
        raise ValueError(f"y: expected labels that can be sorted (all strings or all numbers), got {err}") from None
    return codes.reshape(-1).astype(np.int32), classes


@dataclasses.dataclass(frozen=True, eq=False)
class Standardizer:
    """Per-feature affine scaling z = (x - mean) / scale, fitted on training data.

    ``scale`` is the training standard deviation, or 1 for a constant column (so a constant
    feature maps to 0 rather than dividing by zero). A column is constant when its standard
    deviation is at most ``10 * eps(float32) * |mean|`` (rounding, not spread) or below float32's
    smallest normal number; the run directories' preprocessing uses the same rule.

    Attributes:
      mean: float32 array of shape (n_features,).
      scale: float32 array of shape (n_features,), all > 0.

    Example:
      >>> s = Standardizer.fit([[1.0, 5.0], [3.0, 5.0]])
      >>> s.transform([[2.0, 5.0], [3.0, 6.0]])
      array([[0., 0.],
             [1., 1.]], dtype=float32)
    """

    mean: np.ndarray
    scale: np.ndarray

    def __post_init__(self) -> None:
        mean = np.asarray(self.mean, dtype=np.float32).reshape(-1)
        scale = np.asarray(self.scale, dtype=np.float32).reshape(-1)
        if mean.shape != scale.shape:
            raise ValueError(f"scale: expected shape {mean.shape} like mean, got {scale.shape}")
        if not (np.isfinite(mean).all() and np.isfinite(scale).all() and (scale > 0).all()):
            raise ValueError("Standardizer: expected a finite mean and a finite scale > 0")
        object.__setattr__(self, "mean", mean)
        object.__setattr__(self, "scale", scale)

    @classmethod
    def fit(cls, x: Any, name: str = "x") -> Standardizer:
        """The standardiser of the training features ``x`` (n_samples, n_features); errors say ``name``."""
        checked = check_features(x, name)  # finite, numeric, within float32's range
        raw = np.asarray(x)
        data = raw.astype(np.float64) if raw.dtype.kind == "f" else checked.astype(np.float64)  # float64 stays
        mean = data.mean(axis=0)
        std = data.std(axis=0)
        constant = (std <= _CONSTANT_RTOL * np.abs(mean)) | (std < _SMALLEST_SCALE)
        return cls(mean=mean, scale=np.where(constant, 1.0, std))

    @property
    def n_features(self) -> int:
        """The number of features it was fitted on."""
        return len(self.mean)

    def transform(self, x: Any) -> np.ndarray:
        """(x - mean) / scale, as float32."""
        data = self._check(x, "x")
        return arrays.aligned((data - self.mean) / self.scale, np.float32)

    def inverse_transform(self, z: Any) -> np.ndarray:
        """z * scale + mean: the original units back, as float32."""
        data = self._check(z, "z")
        return arrays.aligned(data * self.scale + self.mean, np.float32)

    def _check(self, x: Any, name: str) -> np.ndarray:
        data = check_features(x, name)
        if data.shape[1] != self.n_features:
            raise ValueError(
                f"{name}: expected {self.n_features} features (as in the data the Standardizer "
                f"was fitted on), got {data.shape[1]}"
            )
        return data


def standardize(x_train: Any, *others: Any) -> tuple[Any, ...]:
    """Fits a :class:`Standardizer` on ``x_train`` and applies it to it and to ``others``.

    Args:
      x_train: the training features; the only data the statistics come from.
      *others: validation or test features, transformed with the training statistics.

    Returns:
      ``(standardizer, x_train_scaled, *others_scaled)``.

    Example:
      >>> s, train, test = standardize([[0.0], [2.0]], [[4.0]])
      >>> train.ravel().tolist(), test.ravel().tolist()
      ([-1.0, 1.0], [3.0])
    """
    scaler = Standardizer.fit(x_train)
    return (scaler, scaler.transform(x_train), *(scaler.transform(x) for x in others))
