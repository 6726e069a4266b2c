"""The host side of the losses (NumPy only): target checks, encoding, decoding, probabilities.

Each registered :class:`nnjax.losses.Loss` is built from these pieces, so no caller compares
loss names: a loss checks its targets (``check_*``), encodes class indices or values as its
targets (``encode_*``), decodes outputs into predictions (``decode_*``), gives class
probabilities (``*_probabilities``) and says how many outputs ``k`` classes need.

Example:
  >>> import numpy as np
  >>> encode_plus_minus_one([0, 1, 1]).tolist(), decode_at_least_zero(np.array([[-0.5], [0.0]])).tolist()
  ([-1.0, 1.0, 1.0], [0, 1])
  >>> sigmoid_probabilities(np.array([[0.0]])).tolist()
  [[0.5, 0.5]]
"""

from __future__ import annotations

from typing import Any

import numpy as np

from nnjax._base import validation as checks

__all__ = ["check_any", "check_classes", "check_plus_minus_one", "check_values", "check_zero_one", "decode_above_zero",
           "decode_argmax", "decode_at_least_zero", "decode_values", "encode_indices", "encode_plus_minus_one",
           "encode_values", "encode_zero_one", "no_probabilities", "one_output_each", "one_output_for_two_classes",
           "sigmoid_probabilities", "softmax_probabilities"]

# ----------------------------------------------------------------------------------------------
# Target checks: check(y, n, k, name) -> the targets as an array, for n examples and k outputs


def _width_check(y: np.ndarray, n: int, k: int, name: str) -> np.ndarray:
    width = 1 if y.ndim == 1 else y.shape[1]
    if width != k:
        raise ValueError(f"{name}: expected targets of shape ({n}, {k}){' or (n,)' if k == 1 else ''} for "
                         f"{k} output(s), got {y.shape}")
    return y


def check_values(y: Any, n: int, k: int, name: str) -> np.ndarray:
    return _width_check(checks.check_targets(y, n, name), n, k, name)


def check_any(y: Any, n: int, k: int, name: str) -> np.ndarray:
    """A callable loss defines its own targets: only the row count and finiteness are checked."""
    return checks.check_targets(y, n, name)


def check_classes(y: Any, n: int, k: int, name: str) -> np.ndarray:
    if np.ndim(y) == 2:  # one-hot rows
        y = checks.check_targets(y, n, name)
        if y.shape[1] != k:
            raise ValueError(f"{name}: expected one-hot targets of shape ({n}, {k}), got {y.shape}")
        return y
    return checks.check_labels(y, k, name, n=n)


def check_zero_one(y: Any, n: int, k: int, name: str) -> np.ndarray:
    if np.ndim(y) == 2 and np.shape(y)[1] > 1:  # multilabel 0/1 rows
        y = checks.check_targets(y, n, name)
        if not np.isin(y, (0, 1)).all():
            bad = np.unique(y[~np.isin(y, (0, 1))])[:10]
            raise ValueError(f"{name}: expected 0/1 label indicators, got values {bad}")
        return _width_check(y.astype(np.float32), n, k, name)
    return _width_check(checks.check_binary_labels(y, name, n=n), n, k, name)


def check_plus_minus_one(y: Any, n: int, k: int, name: str) -> np.ndarray:
    return _width_check(checks.check_signed_labels(y, name, n=n), n, k, name)


# ----------------------------------------------------------------------------------------------
# Targets from class indices or values, predictions and probabilities from outputs


def encode_values(y: Any) -> np.ndarray:
    return np.asarray(y, np.float32)


def encode_indices(y: Any) -> np.ndarray:
    return np.asarray(y, np.int32)


def encode_zero_one(y: Any) -> np.ndarray:
    return np.asarray(y, np.int32).astype(np.float32)


def encode_plus_minus_one(y: Any) -> np.ndarray:
    return (2 * np.asarray(y, np.int32) - 1).astype(np.float32)


def decode_values(logits: Any) -> np.ndarray:
    logits = np.asarray(logits)
    return logits[:, 0] if logits.shape[1] == 1 else logits


def decode_argmax(logits: Any) -> np.ndarray:
    return np.argmax(np.asarray(logits), axis=-1)


def decode_above_zero(logits: Any) -> np.ndarray:
    """Class 1 where the logit is > 0 (sigmoid > 1/2); one column per label for several outputs."""
    return decode_values(np.asarray(logits) > 0).astype(np.int64)


def decode_at_least_zero(logits: Any) -> np.ndarray:
    """Class 1 where the score is >= 0 (``sign(0) = +1``)."""
    return decode_values(np.asarray(logits) >= 0).astype(np.int64)


def softmax_probabilities(logits: Any) -> np.ndarray:
    logits = np.asarray(logits, np.float64)
    shifted = np.exp(logits - logits.max(axis=-1, keepdims=True))
    return shifted / shifted.sum(axis=-1, keepdims=True)


def sigmoid_probabilities(logits: Any) -> np.ndarray:
    """Two columns ``(1 - p, p)`` for one output; each label's ``p`` for several (multilabel)."""
    logits = np.asarray(logits, np.float64)
    e = np.exp(-np.abs(logits))  # never overflows; 1 / (1 + exp(-x)) either way of zero
    p = np.where(logits >= 0, 1.0 / (1.0 + e), e / (1.0 + e))
    return np.stack([1.0 - p[:, 0], p[:, 0]], axis=1) if logits.shape[1] == 1 else p


def no_probabilities(logits: Any) -> None:
    return None


def one_output_each(k: int) -> int:
    """One output per class (softmax) or per target column (regression)."""
    return int(k)


def one_output_for_two_classes(name: str, k: int) -> int:
    if k != 2:
        raise ValueError(f"loss: expected softmax_cross_entropy for {k} classes, got {name!r} (one output "
                         "for exactly 2 classes)")
    return 1
