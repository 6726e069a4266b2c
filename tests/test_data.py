"""Tests for nnjax.data: validation, encoding, scaling, splitting, text, datasets and files."""

import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from sklearn.linear_model import LinearRegression, LogisticRegression

from nnjax import data

# ----------------------------------------------------------------------------------------------
# check_features / check_targets


def test_check_features_converts_to_float32():
    out = data.check_features([[1, 2], [3, 4]])
    assert out.dtype == np.float32 and out.shape == (2, 2)
    np.testing.assert_array_equal(out, [[1, 2], [3, 4]])
    assert data.check_features(np.array([[True], [False]])).tolist() == [[1.0], [0.0]]
    assert data.check_features(jnp.ones((3, 2), jnp.float32)).dtype == np.float32


def test_check_features_allow_int_keeps_integers():
    ids = data.check_features(np.array([[5, 0, 7]], dtype=np.int64), allow_int=True)
    assert ids.dtype == np.int32 and ids.tolist() == [[5, 0, 7]]
    assert data.check_features([[0.5]], allow_int=True).dtype == np.float32


@pytest.mark.parametrize(
    "value, error, pattern",
    [
        ([1.0, 2.0, 3.0], ValueError, r"expected a 2-D array .* got a 1-D array of shape \(3,\).*reshape\(-1, 1\)"),
        (np.zeros((2, 2, 2)), ValueError, r"expected a 2-D array .* got a 3-D array of shape \(2, 2, 2\)"),
        (5.0, ValueError, r"expected a 2-D array"),
        (np.zeros((0, 3)), ValueError, r"at least one sample and one feature, got shape \(0, 3\)"),
        (np.zeros((3, 0)), ValueError, r"at least one sample and one feature, got shape \(3, 0\)"),
        ([["a", "b"]], TypeError, r"expected a numeric array .* got an array of dtype <U1"),
        (np.array([[1, None]], dtype=object), TypeError, r"got an array of dtype object"),
        (None, TypeError, r"got a NoneType"),
        (np.ones((2, 2), dtype=complex), TypeError, r"dtype complex128"),
        ([[1.0, 2.0], [3.0]], ValueError, r"cannot convert"),
        (np.array([[1e300]]), ValueError, r"float32 range"),
    ],
)
def test_check_features_rejects(value, error, pattern):
    with pytest.raises(error, match=r"^x_train: .*" + pattern):
        data.check_features(value, name="x_train")


def test_check_features_reports_non_finite_count_and_first_row():
    x = np.zeros((6, 3))
    x[2, 1], x[4, 0], x[4, 2] = np.nan, np.inf, -np.inf
    with pytest.raises(ValueError, match=r"^x: expected finite values, got 3 NaN or infinite entries \(first in row 2"):
        data.check_features(x)


def test_check_targets_accepts_good_targets():
    assert data.check_targets([1.5, 2.5], 2).dtype == np.float32
    assert data.check_targets(np.ones((4, 3)), 4).shape == (4, 3)
    assert data.check_targets(np.array([0, 1, 1]), 3).dtype == np.int32
    assert data.check_targets(np.ones(7), None).shape == (7,)


@pytest.mark.parametrize(
    "value, n, error, pattern",
    [
        (np.ones(4), 5, ValueError, r"expected 5 rows .* got 4 rows"),
        (np.ones((5, 2, 2)), 5, ValueError, r"1-D .* or 2-D .* got a 3-D array"),
        (np.ones((5, 0)), 5, ValueError, r"got a 2-D array of shape \(5, 0\)"),
        (np.array([1.0, np.nan]), 2, ValueError, r"1 NaN or infinite entry \(first in row 1\)"),
        (np.array(["a", "b"]), 2, TypeError, r"numeric"),
        (np.ones(0), None, ValueError, r"at least one row"),
    ],
)
def test_check_targets_rejects(value, n, error, pattern):
    with pytest.raises(error, match=r"^y_val: .*" + pattern):
        data.check_targets(value, n, name="y_val")


# ----------------------------------------------------------------------------------------------
# Label checks


def test_check_labels_accepts_whole_numbers():
    for value in ([0, 2, 1], [0.0, 2.0, 1.0], np.array([[0], [2], [1]])):
        out = data.check_labels(value, n_classes=3)
        assert out.dtype == np.int32 and out.tolist() == [0, 2, 1]
    assert data.check_labels([True, False]).tolist() == [1, 0]
    assert data.check_labels([7, 0]).tolist() == [7, 0]  # no upper bound without n_classes


@pytest.mark.parametrize(
    "value, kwargs, error, pattern",
    [
        ([0, 0.5, 2.25], {}, ValueError, r"whole-number labels, got \[0.5, 2.25\]"),
        ([0, -1, 1, -3], {}, ValueError, r"labels >= 0, got out-of-range values \[-3, -1\]"),
        ([0, 7, 3, 1, 3], {"n_classes": 3}, ValueError, r"labels in \[0, 3\), got out-of-range values \[3, 7\]"),
        (["cat", "dog"], {}, TypeError, r"encode_labels"),
        (np.eye(3), {}, ValueError, r"shape \(n,\), got a 2-D array of shape \(3, 3\).*argmax"),
        ([0, 1], {"n": 3}, ValueError, r"expected 3 rows .* got 2"),
        ([0.0, np.nan], {}, ValueError, r"NaN"),
    ],
)
def test_check_labels_rejects(value, kwargs, error, pattern):
    with pytest.raises(error, match=r"^labels: .*" + pattern):
        data.check_labels(value, name="labels", **kwargs)


def test_check_labels_lists_at_most_ten_values():
    with pytest.raises(ValueError, match=r"10, 11, .*\(12 distinct\)\]"):
        data.check_labels(np.arange(10, 22), n_classes=2)


def test_check_labels_rejects_bad_n_classes():
    with pytest.raises(ValueError, match=r"^n_classes: expected an int >= 1, got 0"):
        data.check_labels([0], n_classes=0)


def test_check_signed_labels():
    out = data.check_signed_labels([-1, 1, 1])
    assert out.dtype == np.float32 and out.tolist() == [-1.0, 1.0, 1.0]
    assert data.check_signed_labels(np.array([[1.0], [-1.0]])).shape == (2, 1)
    assert data.check_signed_labels([1, -1], dtype=np.int32).dtype == np.int32
    with pytest.raises(ValueError, match=r"^t: expected labels in \{-1, 1\}, got \[0\]; .* 2 \* y - 1"):
        data.check_signed_labels([0, 1, 1], name="t")
    with pytest.raises(ValueError, match=r"^t: expected labels in \{-1, 1\}, got \[2\]$"):
        data.check_signed_labels([-1, 2], name="t")
    with pytest.raises(ValueError, match=r"^t: expected 3 rows"):
        data.check_signed_labels([-1, 1], name="t", n=3)


def test_check_binary_labels():
    for value in ([0, 1, 1], [0.0, 1.0], [True, False]):
        out = data.check_binary_labels(value)
        assert out.dtype == np.float32 and set(out.tolist()) <= {0.0, 1.0}
    with pytest.raises(ValueError, match=r"^t: expected labels in \{0, 1\}, got \[-1\]; .*\(y \+ 1\) // 2"):
        data.check_binary_labels([-1, 1], name="t")
    with pytest.raises(ValueError, match=r"^t: expected labels in \{0, 1\}, got \[0.5\]$"):
        data.check_binary_labels([0, 0.5], name="t")


# ----------------------------------------------------------------------------------------------
# Hyper-parameter checks


def test_check_fraction_interval():
    assert data.check_fraction(0, "dropout") == 0.0
    assert data.check_fraction(np.float32(0.25), "dropout") == 0.25
    assert data.check_fraction(1.0, "momentum", inclusive_high=True) == 1.0
    assert data.check_fraction(5, "x", low=2, high=10) == 5.0
    rates = np.array([0.0, 0.5, 0.9])
    assert data.check_fraction(rates, "dropout") is rates
    for bad in (1.0, -0.01, float("nan")):
        with pytest.raises(ValueError, match=r"^dropout: expected a number in \[0, 1\), got"):
            data.check_fraction(bad, "dropout")
    with pytest.raises(ValueError, match=r"^dropout: .* got 1.5 at flat index 1"):
        data.check_fraction([0.1, 1.5], "dropout")
    with pytest.raises(ValueError, match=r"^x: expected a number in \[2, 10\], got 11"):
        data.check_fraction(11, "x", low=2, high=10, inclusive_high=True)


@pytest.mark.parametrize("bad", [True, "0.5", None, [[0.1], [0.2, 0.3]]])
def test_check_fraction_rejects_non_numbers(bad):
    with pytest.raises(TypeError, match=r"^dropout: expected a number"):
        data.check_fraction(bad, "dropout")


def test_hyperparameter_checks_pass_traced_values():
    double = jax.jit(lambda r: data.check_fraction(r, "rate") * 2 + data.check_positive(r, "lr"))
    np.testing.assert_allclose(double(0.25), 0.75)
    out = jax.vmap(lambda r: data.check_fraction(r, "rate"))(jnp.array([0.1, 0.2]))
    np.testing.assert_allclose(out, [0.1, 0.2])


def test_check_positive():
    assert data.check_positive(1e-3, "lr") == pytest.approx(1e-3)
    assert data.check_positive(0, "l2", allow_zero=True) == 0.0
    for bad in (0.0, -1.0, float("inf"), float("nan")):
        with pytest.raises(ValueError, match=r"^lr: expected a finite number > 0"):
            data.check_positive(bad, "lr")
    with pytest.raises(ValueError, match=r"^l2: expected a finite number >= 0, got -0.5"):
        data.check_positive(-0.5, "l2", allow_zero=True)
    with pytest.raises(TypeError, match=r"^lr: "):
        data.check_positive("fast", "lr")


def test_check_positive_int():
    assert data.check_positive_int(32, "batch_size") == 32
    value = data.check_positive_int(np.int64(3), "epochs")
    assert value == 3 and type(value) is int
    for bad in (0, -4):
        with pytest.raises(ValueError, match=rf"^batch_size: expected an int >= 1, got {bad}$"):
            data.check_positive_int(bad, "batch_size")
    for bad in (32.0, True, "32", None):
        with pytest.raises(TypeError, match=r"^batch_size: expected an int >= 1, got"):
            data.check_positive_int(bad, "batch_size")


# ----------------------------------------------------------------------------------------------
# one_hot, encode_labels, Standardizer


def test_one_hot_round_trip(rng):
    labels = rng.integers(0, 5, size=50)
    encoded = data.one_hot(labels, n_classes=7)
    assert encoded.shape == (50, 7) and encoded.dtype == np.float32
    np.testing.assert_array_equal(encoded.sum(axis=1), 1.0)
    np.testing.assert_array_equal(encoded.argmax(axis=1), labels)
    assert data.one_hot([0, 2]).shape == (2, 3)
    assert data.one_hot([1], dtype=np.int32).dtype == np.int32
    with pytest.raises(ValueError, match=r"^labels: expected labels in \[0, 2\)"):
        data.one_hot([0, 2], n_classes=2)


def test_encode_labels_on_strings():
    y = ["pear", "apple", "pear", "fig", "apple"]
    codes, classes = data.encode_labels(y)
    assert codes.dtype == np.int32
    assert classes.tolist() == sorted(set(y))
    assert classes[codes].tolist() == y
    codes, classes = data.encode_labels(np.array([10, -2, 10]))
    assert classes.tolist() == [-2, 10] and codes.tolist() == [1, 0, 1]


@pytest.mark.parametrize("bad", [[], np.ones((2, 2)), [1.0, np.nan], ["a", None]])
def test_encode_labels_rejects(bad):
    with pytest.raises(ValueError, match=r"^y: expected"):
        data.encode_labels(bad)


def _features(rng, n):
    """Columns with different scales and offsets, plus one constant column."""
    x = rng.normal(loc=[5.0, -3.0, 0.0], scale=[10.0, 0.1, 1.0], size=(n, 3))
    return np.concatenate([x, np.full((n, 1), 0.1)], axis=1)


def test_standardizer_zero_mean_unit_std_and_constant_column(rng):
    x = _features(rng, 200)
    scaler = data.Standardizer.fit(x)
    z = scaler.transform(x)
    assert z.dtype == np.float32
    np.testing.assert_allclose(z[:, :3].mean(axis=0), 0.0, atol=1e-5)
    np.testing.assert_allclose(z[:, :3].std(axis=0), 1.0, atol=1e-5)
    assert scaler.scale[3] == 1.0
    np.testing.assert_allclose(z[:, 3], 0.0, atol=1e-7)
    np.testing.assert_allclose(scaler.inverse_transform(z), x, rtol=1e-5, atol=1e-5)


def test_standardizer_uses_training_statistics_only(rng):
    x_train, x_test = _features(rng, 100), _features(rng, 50) + 4.0
    scaler, z_train, z_test = data.standardize(x_train, x_test)
    np.testing.assert_allclose(scaler.mean, x_train.mean(axis=0), rtol=1e-5)
    np.testing.assert_allclose(scaler.scale[:3], x_train.std(axis=0)[:3], rtol=1e-5)
    np.testing.assert_allclose(z_train, scaler.transform(x_train))
    np.testing.assert_allclose(z_test, (x_test - scaler.mean) / scaler.scale, rtol=1e-5, atol=1e-5)
    assert abs(z_test[:, 2].mean()) > 1.0  # shifted test data is not re-centred


def test_one_constant_column_rule_for_the_standardizer_and_run_preprocessing(rng):
    """A column is constant (scale 1) when its spread is rounding (below float32's resolution of its
    mean) or too small for a float32 scale; a real spread, however small, is kept. Run directories'
    preprocessing (nnjax.runs.Preprocessing) follows the same rule, features and regression targets."""
    from nnjax import runs

    n = 64
    columns = {
        "exactly constant": np.full(n, 7.25),
        "rounding of 0.1": np.full(n, 0.1) + np.where(np.arange(n) % 2, 1e-17, -1e-17),
        "below float32 at 1000": 1000.0 + 1e-5 * rng.standard_normal(n),
        "tiny but real at 0": 1e-20 * rng.standard_normal(n),
        "below float32's smallest normal": 1e-40 * rng.standard_normal(n),
        "ordinary": 3.0 + 2.0 * rng.standard_normal(n),
    }
    constant = {"exactly constant", "rounding of 0.1", "below float32 at 1000", "below float32's smallest normal"}
    x = np.stack(list(columns.values()), axis=1)
    std, mean = x.std(axis=0), x.mean(axis=0)
    want = np.where([name in constant for name in columns], 1.0, std).astype(np.float32)
    np.testing.assert_array_equal(data.Standardizer.fit(x).scale, want)
    prep = runs.Preprocessing.fit(x, rng.normal(size=n), task="regression", loss="mse",
                                  feature_names=tuple(columns))
    np.testing.assert_array_equal(np.asarray(prep.scale, np.float32), want)
    np.testing.assert_array_equal(np.asarray(prep.mean, np.float32), mean.astype(np.float32))
    for j, name in enumerate(columns):  # the transform is finite, and 0 for a constant column
        z = prep.inputs(x)[:, j]
        assert np.all(np.isfinite(z)) and (np.all(np.abs(z) < 1e-3) if name in constant else abs(z.std() - 1) < 1e-4)
    for target in (columns["exactly constant"], columns["ordinary"]):
        back = runs.Preprocessing.fit(x, target, task="regression", loss="mse", feature_names=tuple(columns))
        assert back.y_scale == tuple(float(v) for v in data.Standardizer.fit(target[:, None]).scale)


def test_standardizer_errors(rng):
    scaler = data.Standardizer.fit(rng.normal(size=(10, 3)))
    with pytest.raises(ValueError, match=r"^x: expected 3 features .* got 2"):
        scaler.transform(np.ones((4, 2)))
    with pytest.raises(ValueError, match=r"scale > 0"):
        data.Standardizer(mean=np.zeros(2), scale=np.array([1.0, 0.0]))
    with pytest.raises(ValueError, match=r"^scale: expected shape \(2,\)"):
        data.Standardizer(mean=np.zeros(2), scale=np.ones(3))


# ----------------------------------------------------------------------------------------------
# split


@pytest.mark.parametrize("fractions", [(0.8, 0.2), (0.6, 0.2, 0.2), (0.5, 0.3, 0.1, 0.1)])
def test_split_is_disjoint_complete_and_aligned(key, fractions):
    n = 53
    x, y = np.arange(2 * n).reshape(n, 2), np.arange(n)
    parts = data.split(key, x, y, fractions=fractions)
    assert len(parts) == len(fractions)
    assert [len(p[1]) for p in parts] == data.split_sizes(n, fractions)
    for x_part, y_part in parts:
        np.testing.assert_array_equal(x_part[:, 0], 2 * y_part)  # rows stay together
    assert sorted(np.concatenate([p[1] for p in parts]).tolist()) == list(range(n))


def test_split_sizes_follow_fractions():
    for n in range(0, 40):
        sizes = data.split_sizes(n, (0.7, 0.2, 0.1))
        assert sum(sizes) == n
        assert all(abs(s - f * n) < 1 for s, f in zip(sizes, (0.7, 0.2, 0.1)))


def test_split_is_deterministic_per_key(seed):
    y = np.arange(100)
    first = data.split(jax.random.key(seed), y)
    np.testing.assert_array_equal(first[0][0], data.split(jax.random.key(seed), y)[0][0])
    np.testing.assert_array_equal(first[0][0], data.split(seed, y)[0][0])  # an int seed is key(seed)
    assert not np.array_equal(first[0][0], data.split(jax.random.key(seed + 1), y)[0][0])
    legacy = data.split(jax.random.PRNGKey(seed), y)
    assert sorted(np.concatenate([legacy[0][0], legacy[1][0]]).tolist()) == y.tolist()


def test_stratified_split_keeps_class_proportions(key, rng):
    labels = rng.permutation(np.repeat([0, 1, 2], [70, 25, 6]))
    fractions = (0.6, 0.2, 0.2)
    parts = data.split(key, np.arange(len(labels)), labels, fractions=fractions, stratify=labels)
    for (_, part_labels), fraction in zip(parts, fractions):
        for c, total in zip(range(3), (70, 25, 6)):
            assert abs(np.sum(part_labels == c) - fraction * total) <= 1
    names = np.array(["a", "b"])[rng.integers(0, 2, 40)]
    (train,), (test,) = data.split(key, names, stratify=names, fractions=(0.75, 0.25))
    assert abs(np.sum(test == "a") - 0.25 * np.sum(names == "a")) <= 1


@pytest.mark.parametrize(
    "args, kwargs, error, pattern",
    [
        ((np.arange(5), np.arange(4)), {}, ValueError, r"^arrays\[1\]: expected 5 rows like arrays\[0\], got 4"),
        ((np.arange(5),), {"fractions": (0.5, 0.4)}, ValueError, r"^fractions: expected positive .* sum to 1"),
        ((np.arange(5),), {"fractions": (1.2, -0.2)}, ValueError, r"^fractions: expected positive"),
        ((np.arange(5),), {"fractions": (1.0,)}, ValueError, r"^fractions: expected at least two"),
        ((np.arange(3),), {"fractions": (0.9, 0.1)}, ValueError, r"^fractions: part 1 .* would be empty"),
        ((np.arange(5),), {"stratify": np.arange(4)}, ValueError, r"^stratify: expected one label per row"),
        ((), {}, ValueError, r"^arrays: expected at least one array"),
    ],
)
def test_split_rejects(key, args, kwargs, error, pattern):
    with pytest.raises(error, match=pattern):
        data.split(key, *args, **kwargs)


@pytest.mark.parametrize("bad", ["0", 1.5, True, np.zeros(3, np.uint32)])
def test_split_rejects_bad_keys(bad):
    with pytest.raises(TypeError, match=r"^key_or_seed: expected one jax PRNG key"):
        data.split(bad, np.arange(4))


# ----------------------------------------------------------------------------------------------
# BagOfWords

CORPUS = ["Red apple, red!", "green apple", "Blue"]
# Hand-counted: apple 2, red 2, blue 1, green 1; order by count, then alphabetically.
VOCABULARY = {"apple": 0, "red": 1, "blue": 2, "green": 3}


def test_bag_of_words_counts_match_hand_computed_example():
    bow = data.BagOfWords().fit(CORPUS)
    assert bow.vocabulary == VOCABULARY
    expected = [[1, 2, 0, 0], [1, 0, 0, 1], [0, 0, 1, 0]]
    out = bow.transform(CORPUS)
    assert out.dtype == np.float32
    np.testing.assert_array_equal(out, expected)
    binary = data.BagOfWords(binary=True).fit(CORPUS).transform(CORPUS)
    np.testing.assert_array_equal(binary, np.minimum(expected, 1))


def test_bag_of_words_unknown_and_empty_texts():
    bow = data.BagOfWords().fit(CORPUS)
    out = bow.transform(["purple APPLE", "", "!!!"])
    np.testing.assert_array_equal(out, [[1, 0, 0, 0], [0, 0, 0, 0], [0, 0, 0, 0]])
    assert bow.transform([]).shape == (0, 4)


def test_bag_of_words_token_ids():
    bow = data.BagOfWords().fit(CORPUS)
    assert (data.PAD_ID, data.UNKNOWN_ID) == (0, 1)
    assert bow.n_ids == len(VOCABULARY) + 2
    ids = bow.tokens_to_ids(["purple apple red", "", "green green green green"], max_len=3)
    assert ids.dtype == np.int32 and ids.shape == (3, 3)
    red, apple, green = (VOCABULARY[t] + 2 for t in ("red", "apple", "green"))
    np.testing.assert_array_equal(ids, [[data.UNKNOWN_ID, apple, red], [0, 0, 0], [green, green, green]])
    np.testing.assert_array_equal(bow.tokens_to_ids(["red"], max_len=3), [[red, 0, 0]])


def test_bag_of_words_options():
    texts = ["the cat", "the dog", "the cat sat", "The Cat"]
    assert list(data.BagOfWords(min_count=2).fit(texts).vocabulary) == ["the", "cat"]
    assert list(data.BagOfWords(max_features=1).fit(texts).vocabulary) == ["the"]
    assert "the" not in data.BagOfWords(stop_words="english").fit(texts).vocabulary
    assert "cat" not in data.BagOfWords(stop_words={"CAT"}).fit(texts).vocabulary
    cased = data.BagOfWords(lowercase=False).fit(texts).vocabulary
    assert {"the", "The", "cat", "Cat"} <= set(cased)
    assert data.BagOfWords().tokenize("Don't stop_now") == ["don't", "stop", "now"]


def test_bag_of_words_is_immutable_and_comparable():
    bow = data.BagOfWords()
    fitted = bow.fit(CORPUS)
    assert bow.tokens is None and fitted.tokens is not None
    assert fitted == data.BagOfWords().fit(list(reversed(CORPUS)))
    assert hash(fitted) == hash(data.BagOfWords().fit(CORPUS))
    with pytest.raises(ValueError, match=r"not fitted.*bow = bow.fit\(texts\)"):
        bow.transform(CORPUS)


@pytest.mark.parametrize(
    "make, error, pattern",
    [
        (lambda: data.BagOfWords().fit([]), ValueError, r"^texts: .*empty corpus"),
        (lambda: data.BagOfWords().fit(["ok", 3]), TypeError, r"^texts\[1\]: expected a str, got int"),
        (lambda: data.BagOfWords().fit("one text"), TypeError, r"^texts: .*single str"),
        (lambda: data.BagOfWords(stop_words="english").fit(["the", "a"]), ValueError, r"vocabulary would be empty"),
        (lambda: data.BagOfWords(min_count=3).fit(CORPUS), ValueError, r"min_count=3"),
        (lambda: data.BagOfWords(stop_words="french"), ValueError, r"^stop_words: "),
        (lambda: data.BagOfWords(min_count=0), ValueError, r"^min_count: "),
        (lambda: data.BagOfWords(token_pattern="("), ValueError, r"^token_pattern: "),
        (lambda: data.BagOfWords().fit(CORPUS).tokens_to_ids(CORPUS, max_len=0), ValueError, r"^max_len: "),
        (lambda: data.BagOfWords().fit(CORPUS).transform([None]), TypeError, r"^texts\[0\]: "),
    ],
)
def test_bag_of_words_rejects(make, error, pattern):
    with pytest.raises(error, match=pattern):
        make()


# ----------------------------------------------------------------------------------------------
# Datasets

BUNDLED = {"digits": (1797, 64, 10), "breast_cancer": (569, 30, 2), "iris": (150, 4, 3),
           "wine": (178, 13, 3), "diabetes": (442, 10, 0)}


@pytest.mark.parametrize("name", data.names())
def test_every_dataset_has_documented_shapes_and_dtypes(name):
    ds = data.load_dataset(name)
    n, d = ds.x.shape
    assert ds.x.dtype == np.float32 and np.isfinite(ds.x).all()
    assert ds.y.shape == (n,) and len(ds.feature_names) == d and ds.description
    if name in BUNDLED:
        assert (n, d, ds.n_classes) == BUNDLED[name]
    if ds.task == "classification":
        assert ds.y.dtype == np.int32 and ds.n_classes >= 2
        assert sorted(set(ds.y.tolist())) == list(range(ds.n_classes))  # every class, nothing else
        assert len(ds.target_names) == ds.n_classes
    else:
        assert ds.task == "regression" and ds.n_classes == 0 and ds.y.dtype == np.float32


def test_generated_datasets_follow_seed_and_n():
    a, b = data.load_dataset("spirals", seed=3, n=101), data.load_dataset("spirals", seed=3, n=101)
    assert a.x.shape == (101, 2)
    np.testing.assert_array_equal(a.x, b.x)
    assert not np.array_equal(a.x, data.load_dataset("spirals", seed=4, n=101).x)
    np.testing.assert_array_equal(data.load_dataset("linear").x, data.load_dataset("regression").x)
    loose = data.load_dataset("moons", noise=0.5).x.std()
    assert loose > data.load_dataset("moons", noise=0.0).x.std()


def test_bundled_subset_is_rows_of_the_full_data():
    full, part = data.load_dataset("iris"), data.load_dataset("Iris", n=20, seed=1)
    assert part.x.shape == (20, 4)
    for row, label in zip(part.x, part.y):
        matches = np.flatnonzero((full.x == row).all(axis=1))
        assert label in full.y[matches]


def test_xor_is_not_linearly_separable_but_blobs_are():
    xor = data.load_dataset("xor", noise=0.1)
    np.testing.assert_array_equal(xor.y, (xor.x[:, 0] > 0) ^ (xor.x[:, 1] > 0))
    assert LogisticRegression(max_iter=1000).fit(xor.x, xor.y).score(xor.x, xor.y) < 0.8
    blobs = data.load_dataset("blobs")
    assert LogisticRegression(max_iter=1000).fit(blobs.x, blobs.y).score(blobs.x, blobs.y) == 1.0
    wide = data.load_dataset("blobs", noise=3.0)  # the margin holds even with large noise
    side = wide.x.sum(axis=1)
    assert (side[wide.y == 1] >= 1 - 1e-5).all() and (side[wide.y == 0] <= -1 + 1e-5).all()


def test_regression_target_is_linear_in_the_features():
    ds = data.load_dataset("regression", n=300)
    assert LinearRegression().fit(ds.x, ds.y).score(ds.x, ds.y) > 0.95


@pytest.mark.parametrize(
    "name, kwargs, error, pattern",
    [
        ("mons", {}, ValueError, r"^name: expected one of .*moons.*; got 'mons' \(did you mean 'moons'\?\)"),
        ("iris", {"n": 151}, ValueError, r"^n: expected at most 150"),
        ("iris", {"noise": 0.1}, ValueError, r"^noise: expected None"),
        ("xor", {"n": 0}, ValueError, r"^n: expected an int >= 1"),
        ("xor", {"noise": -1.0}, ValueError, r"^noise: "),
        (3, {}, TypeError, r"^name: "),
    ],
)
def test_load_dataset_rejects(name, kwargs, error, pattern):
    with pytest.raises(error, match=pattern):
        data.load_dataset(name, **kwargs)


# ----------------------------------------------------------------------------------------------
# CSV and NPZ files


def _csv(tmp_path, text):
    path = tmp_path / "data.csv"
    path.write_text(text)
    return path


def test_load_csv_classification_and_regression(tmp_path):
    path = _csv(tmp_path, "height,colour,width\n1.5,red,2\n\n0.5,blue,-1\n2.5,red,3e2\n")
    ds = data.load_csv(path, target="colour")
    assert ds.feature_names == ("height", "width") and ds.x.dtype == np.float32
    np.testing.assert_array_equal(ds.x, [[1.5, 2], [0.5, -1], [2.5, 300]])
    assert ds.task == "classification" and ds.target_names == ("blue", "red")
    assert ds.y.tolist() == [1, 0, 1] and ds.n_classes == 2
    numeric = _csv(tmp_path, "height,width\n1.5,2\n0.5,-1\n2.5,3e2\n")
    reg = data.load_csv(numeric, target="height")
    assert reg.task == "regression" and reg.y.tolist() == [1.5, 0.5, 2.5] and reg.n_classes == 0
    assert data.load_csv(numeric, target="width").task == "classification"  # whole numbers
    forced = data.load_csv(numeric, target="width", task="regression")
    assert forced.task == "regression" and forced.y.tolist() == [2.0, -1.0, 300.0]
    semi = _csv(tmp_path, "a;b\n1;4\n2;5\n")
    assert data.load_csv(semi, target="b", delimiter=";").y.tolist() == [0, 1]


@pytest.mark.parametrize(
    "text, pattern",
    [
        ("a,colour,y\n1,2,0\n2,3,1\n3,red,0\n", r"column 'colour' is not numeric \(first bad value 'red' in row 3"),
        ("a,b,y\n1,,0\n", r"column 'b' has a missing value in row 1"),
        ("a,b,y\n1,2,0\n1,nan,1\n", r"column 'b' has a non-finite value 'nan' in row 2"),
        ("a,b,y\n1,2,0\n1,2\n", r"line 3 has 2 fields, expected 3"),
        ("a,b,y\n", r"at least one data row"),
        ("", r"empty file"),
        ("a,a,y\n1,2,0\n", r"distinct column names, got duplicates \['a'\]"),
        ("a,b,y\n1,2,cat\n1,2,\n", r"column 'y' has a missing value in row 2"),
        ("y\n1\n", r"at least one feature column"),
    ],
)
def test_load_csv_rejects_bad_files(tmp_path, text, pattern):
    with pytest.raises(ValueError, match=pattern):
        data.load_csv(_csv(tmp_path, text), target="y")


def test_load_csv_missing_file_and_unknown_column(tmp_path):
    with pytest.raises(FileNotFoundError, match=re.escape(str(tmp_path / "nope.csv"))):
        data.load_csv(tmp_path / "nope.csv", target="y")
    with pytest.raises(ValueError, match=r"^target: expected one of the columns \['a', 'b'\], got 'label'"):
        data.load_csv(_csv(tmp_path, "a,b\n1,2\n"), target="label")
    with pytest.raises(ValueError, match=r"^task: "):
        data.load_csv(_csv(tmp_path, "a,b\n1,2\n"), target="b", task="ranking")


def test_load_npz(tmp_path, rng):
    x, labels = rng.normal(size=(12, 3)), rng.integers(0, 3, 12)
    labels[:3] = [0, 1, 2]
    np.savez(tmp_path / "a.npz", x=x, y=labels, features=x, target=x[:, 0])
    ds = data.load_npz(tmp_path / "a.npz")
    assert ds.task == "classification" and ds.n_classes == 3 and ds.y.tolist() == labels.tolist()
    np.testing.assert_allclose(ds.x, x.astype(np.float32))
    reg = data.load_npz(tmp_path / "a.npz", x_key="features", y_key="target")
    assert reg.task == "regression" and reg.y.dtype == np.float32 and reg.target_names == ("target",)


def test_load_npz_rejects_bad_files(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"nope.npz"):
        data.load_npz(tmp_path / "nope.npz")
    np.savez(tmp_path / "keys.npz", features=np.ones((2, 2)), y=np.ones(2))
    with pytest.raises(ValueError, match=r"expected arrays named \['x'\], got \['features', 'y'\]"):
        data.load_npz(tmp_path / "keys.npz")
    np.savez(tmp_path / "short.npz", x=np.ones((3, 2)), y=np.ones(2))
    with pytest.raises(ValueError, match=r"\['y'\]: expected 3 rows like 'x', got shape \(2,\)"):
        data.load_npz(tmp_path / "short.npz")
    np.savez(tmp_path / "nan.npz", x=np.array([[1.0], [np.nan]]), y=np.ones(2))
    with pytest.raises(ValueError, match=r"nan.npz\['x'\]: expected finite values"):
        data.load_npz(tmp_path / "nan.npz")
    np.savez(tmp_path / "obj.npz", x=np.array([[1], ["a"]], dtype=object), y=np.ones(2))
    with pytest.raises(ValueError, match=r"obj.npz: expected numeric or string arrays"):
        data.load_npz(tmp_path / "obj.npz")
    np.save(tmp_path / "single.npy", np.ones(3))
    with pytest.raises(ValueError, match=r"single .npy array"):
        data.load_npz(tmp_path / "single.npy")
    (tmp_path / "text.npz").write_text("not an archive")
    with pytest.raises(ValueError, match=r"text.npz: expected an .npz archive"):
        data.load_npz(tmp_path / "text.npz")


def test_digits_read_directly_equals_scikit_learns_loader():
    """The digits table is read without importing scikit-learn; it must be what load_digits() gives."""
    import sklearn.datasets

    from nnjax.data import datasets

    ours, theirs = datasets._load("digits"), sklearn.datasets.load_digits()
    np.testing.assert_array_equal(ours.data, theirs.data)
    np.testing.assert_array_equal(ours.target, theirs.target)
    assert list(ours.feature_names) == list(theirs.feature_names)
    assert ours.target_names == tuple(str(t) for t in theirs.target_names)
    digits = data.load_dataset("digits")
    assert digits.x.shape == (1797, 64) and digits.n_classes == 10 and set(np.unique(digits.y)) == set(range(10))
