"""Small offline datasets: scikit-learn's bundled ones and generated toy problems.

Every dataset comes as a :class:`Dataset` with float32 features ``x`` of shape (n, n_features) and
targets ``y``: int32 labels in ``[0, n_classes)`` for classification, float32 values of shape (n,)
for regression. Nothing is downloaded.

=================  ===============  ==========  =============================================
name               task             x           y
=================  ===============  ==========  =============================================
``digits``         classification   (1797, 64)  10 digits, 8x8 grey images (values 0..16)
``breast_cancer``  classification   (569, 30)   0 malignant, 1 benign
``iris``           classification   (150, 4)    3 species
``wine``           classification   (178, 13)   3 cultivars
``diabetes``       regression       (442, 10)   disease progression after one year
``xor``            classification   (n, 2)      0/1, four Gaussian blobs; not linearly separable
``moons``          classification   (n, 2)      0/1, two interleaving half circles
``spirals``        classification   (n, 2)      0/1, two interleaved spirals
``blobs``          classification   (n, 2)      0/1, two blobs with a guaranteed margin
``regression``     regression       (n, 5)      noisy linear target (``linear`` is an alias)
=================  ===============  ==========  =============================================

Example:
  >>> data = load_dataset("xor", n=100, seed=1)
  >>> data.x.shape, data.x.dtype, data.y.dtype, data.n_classes
  ((100, 2), dtype('float32'), dtype('int32'), 2)
"""

from __future__ import annotations

import difflib
import gzip
import importlib.util
import pathlib
from typing import Callable, NamedTuple

import numpy as np

from nnjax._base import arrays
from nnjax._base.checks import check_positive, check_positive_int

__all__ = ["Dataset", "load_dataset", "names"]


class Dataset(NamedTuple):
    """Features, targets and what they mean.

    Attributes:
      x: float32 features, shape (n, n_features).
      y: int32 labels in ``[0, n_classes)`` (classification) or float32 targets (regression).
      task: ``"classification"`` or ``"regression"``.
      n_classes: the number of classes; 0 for regression.
      feature_names: one name per column of ``x``.
      target_names: the class names (label ``k`` is ``target_names[k]``), or the target's name.
      description: one or two sentences on where the data comes from.
    """

    x: np.ndarray
    y: np.ndarray
    task: str
    n_classes: int
    feature_names: tuple[str, ...]
    target_names: tuple[str, ...]
    description: str


# ----------------------------------------------------------------------------------------------
# scikit-learn's bundled datasets


_BUNDLED_DESCRIPTIONS = {
    "digits": "Handwritten digits (UCI optical recognition), 8x8 images flattened to 64 pixel "
    "intensities in 0..16; 10 classes. Bundled with scikit-learn.",
    "breast_cancer": "Breast cancer Wisconsin (diagnostic): 30 measurements of cell nuclei; "
    "0 = malignant, 1 = benign. Bundled with scikit-learn.",
    "iris": "Fisher's iris: sepal and petal lengths and widths (cm) of 3 species. Bundled with scikit-learn.",
    "wine": "Wine recognition: 13 chemical measurements of wines from 3 cultivars. Bundled with scikit-learn.",
    "diabetes": "Diabetes: 10 baseline variables (mean-centred and scaled) and a measure of disease "
    "progression one year later. Bundled with scikit-learn.",
}


class _Bunch(NamedTuple):
    data: np.ndarray
    target: np.ndarray
    feature_names: tuple[str, ...]
    target_names: tuple[str, ...] | None


def _digits_file() -> pathlib.Path | None:
    """scikit-learn's digits table, found without importing scikit-learn (about 2 s of imports)."""
    spec = importlib.util.find_spec("sklearn")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = pathlib.Path(list(spec.submodule_search_locations)[0]) / "datasets" / "data" / "digits.csv.gz"
    return path if path.is_file() else None


def _load(name: str) -> _Bunch:
    """A bundled dataset as scikit-learn's ``load_<name>()`` gives it (digits read directly)."""
    path = _digits_file() if name == "digits" else None
    if path is not None:  # what load_digits() reads: 64 pixel columns, then the label
        with gzip.open(path, "rt") as f:
            table = np.loadtxt(f, delimiter=",")
        names = tuple(f"pixel_{row}_{col}" for row in range(8) for col in range(8))
        return _Bunch(table[:, :-1], table[:, -1].astype(int), names, tuple(str(d) for d in range(10)))
    import sklearn.datasets

    bunch = getattr(sklearn.datasets, f"load_{name}")()
    target_names = tuple(str(t) for t in bunch.target_names) if "target_names" in bunch else None
    return _Bunch(bunch.data, bunch.target, tuple(str(f) for f in bunch.feature_names), target_names)


def _bundled(name: str, seed: int, n: int | None) -> Dataset:
    bunch = _load(name)
    x, y = bunch.data, bunch.target
    if n is not None:
        if n > len(x):
            raise ValueError(f"n: expected at most {len(x)} for the {name!r} dataset, got {n}")
        rows = np.random.default_rng(seed).choice(len(x), size=n, replace=False)
        x, y = x[rows], y[rows]
    classification = bunch.target_names is not None
    target_names = bunch.target_names if classification else ("disease progression",)
    return Dataset(
        x=arrays.aligned(x, np.float32),
        y=arrays.aligned(y, np.int32 if classification else np.float32),
        task="classification" if classification else "regression",
        n_classes=len(target_names) if classification else 0,
        feature_names=bunch.feature_names,
        target_names=target_names,
        description=_BUNDLED_DESCRIPTIONS[name],
    )


# ----------------------------------------------------------------------------------------------
# Generated datasets: (rng, n, noise) -> (x, y)


def _shuffled(rng: np.random.Generator, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    order = rng.permutation(len(x))
    return x[order], y[order]


def _group_sizes(n: int, groups: int) -> list[int]:
    """n split into ``groups`` sizes that differ by at most one."""
    return [n // groups + (i < n % groups) for i in range(groups)]


def _xor(rng: np.random.Generator, n: int, noise: float) -> tuple[np.ndarray, np.ndarray]:
    corners = np.array([[-1.0, -1.0], [1.0, 1.0], [-1.0, 1.0], [1.0, -1.0]])
    labels = np.array([0, 0, 1, 1])  # label = (x0 > 0) XOR (x1 > 0) of the blob's centre
    sizes = _group_sizes(n, 4)
    x = np.concatenate([c + noise * rng.standard_normal((k, 2)) for c, k in zip(corners, sizes)])
    return _shuffled(rng, x, np.repeat(labels, sizes))


def _moons(rng: np.random.Generator, n: int, noise: float) -> tuple[np.ndarray, np.ndarray]:
    import sklearn.datasets

    seed = int(rng.integers(2**31))
    return sklearn.datasets.make_moons(n_samples=n, noise=noise, random_state=seed)


def _spirals(rng: np.random.Generator, n: int, noise: float) -> tuple[np.ndarray, np.ndarray]:
    sizes = _group_sizes(n, 2)
    parts = []
    for label, k in enumerate(sizes):
        # Angles from pi/2 to 3.5 pi (1.5 turns), denser outward so points spread evenly.
        theta = np.pi / 2 + 3 * np.pi * np.sqrt(rng.uniform(size=k))
        radius = theta / (3.5 * np.pi)
        arm = radius[:, None] * np.stack([np.cos(theta), np.sin(theta)], axis=1)
        parts.append((-1) ** label * arm + noise * rng.standard_normal((k, 2)))  # class 1: rotated by pi
    return _shuffled(rng, np.concatenate(parts), np.repeat([0, 1], sizes))


def _blobs(rng: np.random.Generator, n: int, noise: float) -> tuple[np.ndarray, np.ndarray]:
    sizes = _group_sizes(n, 2)
    centres = np.array([[-2.0, -2.0], [2.0, 2.0]])
    # Clipping each coordinate's noise to +-1.5 keeps class 0 in x0 + x1 <= -1 and class 1 in
    # x0 + x1 >= 1: a margin that holds for every draw, whatever the noise level.
    x = np.concatenate([c + np.clip(noise * rng.standard_normal((k, 2)), -1.5, 1.5) for c, k in zip(centres, sizes)])
    return _shuffled(rng, x, np.repeat([0, 1], sizes))


def _linear(rng: np.random.Generator, n: int, noise: float) -> tuple[np.ndarray, np.ndarray]:
    weights = rng.uniform(-2.0, 2.0, size=5)
    bias = rng.uniform(-1.0, 1.0)
    x = rng.standard_normal((n, 5))
    return x, x @ weights + bias + noise * rng.standard_normal(n)


class _Generator(NamedTuple):
    make: Callable[[np.random.Generator, int, float], tuple[np.ndarray, np.ndarray]]
    n: int  # default number of examples
    noise: float  # default noise standard deviation
    description: str


_GENERATED = {
    "xor": _Generator(
        _xor, 400, 0.25,
        "XOR: Gaussian blobs (std = noise) at the corners (+-1, +-1); label 1 where exactly one "
        "coordinate of the centre is positive. Not linearly separable.",
    ),
    "moons": _Generator(
        _moons, 400, 0.2, "Two interleaving half circles (sklearn.datasets.make_moons) with Gaussian noise."
    ),
    "spirals": _Generator(
        _spirals, 400, 0.05, "Two interleaved spirals of 1.5 turns, radius up to 1, with Gaussian noise."
    ),
    "blobs": _Generator(
        _blobs, 200, 0.5,
        "Two Gaussian blobs at (-2, -2) and (2, 2), noise clipped to +-1.5 per coordinate: "
        "linearly separable with a margin.",
    ),
    "regression": _Generator(
        _linear, 400, 0.1,
        "Noisy linear target y = x @ w + b + noise, x standard normal (5 features), w and b drawn "
        "from the seed.",
    ),
}
_ALIASES = {"linear": "regression"}


def names() -> tuple[str, ...]:
    """The names :func:`load_dataset` accepts, sorted."""
    return tuple(sorted([*_BUNDLED_DESCRIPTIONS, *_GENERATED, *_ALIASES]))


def _generated(name: str, seed: int, n: int | None, noise: float | None) -> Dataset:
    spec = _GENERATED[name]
    rng = np.random.default_rng(seed)
    x, y = spec.make(rng, spec.n if n is None else n, spec.noise if noise is None else noise)
    regression = name == "regression"
    return Dataset(
        x=arrays.aligned(x, np.float32),
        y=arrays.aligned(y, np.float32 if regression else np.int32),
        task="regression" if regression else "classification",
        n_classes=0 if regression else 2,
        feature_names=tuple(f"x{i}" for i in range(x.shape[1])),
        target_names=("y",) if regression else ("0", "1"),
        description=spec.description,
    )


def load_dataset(name: str, *, seed: int = 0, n: int | None = None, noise: float | None = None) -> Dataset:
    """Loads a bundled or generated dataset by name (see :func:`names`).

    Args:
      name: a dataset name (case-insensitive; ``-`` and ``_`` are the same).
      seed: draws the generated data, or the subset of a bundled dataset when ``n`` is given.
      n: the number of examples: a random subset for bundled datasets (None: all of them), the
        number generated otherwise (None: 400, 200 for ``blobs``).
      noise: the noise standard deviation of a generated dataset (None: its default).

    Returns:
      A :class:`Dataset`; the same arguments always give the same arrays.

    Raises:
      ValueError: an unknown name (the error lists the valid ones), ``n`` too large, or ``noise``
        given for a bundled dataset.

    Example:
      >>> data = load_dataset("iris")
      >>> data.x.shape, data.n_classes, data.target_names
      ((150, 4), 3, ('setosa', 'versicolor', 'virginica'))
    """
    if not isinstance(name, str):
        raise TypeError(f"name: expected a dataset name (str), got {type(name).__name__}")
    key = _ALIASES.get(name.strip().lower().replace("-", "_"), name.strip().lower().replace("-", "_"))
    if n is not None:
        n = check_positive_int(n, "n")
    if noise is not None:
        noise = check_positive(noise, "noise", allow_zero=True)
    if key in _GENERATED:
        return _generated(key, seed, n, noise)
    if key in _BUNDLED_DESCRIPTIONS:
        if noise is not None:
            raise ValueError(f"noise: expected None for the bundled dataset {key!r}, got {noise}")
        return _bundled(key, seed, n)
    close = difflib.get_close_matches(key, names(), n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    raise ValueError(f"name: expected one of {', '.join(names())}; got {name!r}{hint}")
