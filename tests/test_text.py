"""Tests for nnjax.text: embedding-bag pooling, its gradients, training, and edge cases."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import nnjax
from nnjax import text
from nnjax.data import PAD_ID, UNKNOWN_ID, BagOfWords


def random_ids(rng, n, max_len, n_ids):
    """Token ids with a random amount of trailing padding per row (some rows empty)."""
    ids = rng.integers(UNKNOWN_ID, n_ids, size=(n, max_len))
    lengths = rng.integers(0, max_len + 1, size=n)
    ids[np.arange(max_len)[None, :] >= lengths[:, None]] = PAD_ID
    return ids.astype(np.int32), lengths


def numpy_pool(table, ids, ignore_unknown=False):
    out = np.zeros((len(ids), table.shape[1]))
    for row, seq in enumerate(ids):
        kept = [t for t in seq if t != PAD_ID and not (ignore_unknown and t == UNKNOWN_ID)]
        if kept:
            out[row] = np.mean(table[kept], axis=0)
    return out


def test_init_shapes_and_zero_padding_row(key):
    model = text.EmbeddingBag(n_ids=12, dim=5, hidden=(7,), n_outputs=3, output="softmax")
    params = text.init(key, model)
    assert params["embedding"].shape == (12, 5)
    assert [layer["w"].shape for layer in params["mlp"]] == [(5, 7), (7, 3)]
    np.testing.assert_array_equal(np.asarray(params["embedding"][PAD_ID]), 0.0)
    assert float(jnp.std(params["embedding"][1:])) > 0


@pytest.mark.parametrize("ignore_unknown", [False, True])
def test_pool_is_the_mean_of_the_real_tokens(ignore_unknown, key, rng):
    model = text.EmbeddingBag(n_ids=9, dim=4, ignore_unknown=ignore_unknown)
    params = text.init(key, model)
    params["embedding"] = jnp.asarray(rng.normal(size=(9, 4)), jnp.float32)  # padding row nonzero on purpose
    ids, lengths = random_ids(rng, 30, 6, 9)
    ids[0] = PAD_ID  # an empty text
    pooled = np.asarray(text.pool(params, ids, model))
    expected = numpy_pool(np.asarray(params["embedding"], np.float64), ids, ignore_unknown)
    np.testing.assert_allclose(pooled, expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(pooled[0], 0.0)


def test_pool_equals_a_linear_layer_on_normalised_bag_of_words(key):
    corpus = ["win cash now", "cash cash prize", "lunch at noon", "see you at lunch", "win a prize now now"]
    bow = BagOfWords().fit(corpus)
    ids = bow.tokens_to_ids(corpus, max_len=8)
    counts = bow.transform(corpus).astype(np.float64)
    model = text.EmbeddingBag(n_ids=bow.n_ids, dim=3)
    params = text.init(key, model)
    table = np.asarray(params["embedding"], np.float64)
    expected = (counts / counts.sum(axis=1, keepdims=True)) @ table[2:]
    np.testing.assert_allclose(np.asarray(text.pool(params, ids, model)), expected, rtol=1e-5, atol=1e-6)


def test_apply_and_predict_compose_the_head(key, rng):
    model = text.EmbeddingBag(n_ids=20, dim=6, hidden=(5,), n_outputs=4, activation="tanh", output="softmax")
    params = text.init(key, model)
    ids, _ = random_ids(rng, 10, 7, 20)
    pooled = text.pool(params, ids, model)
    np.testing.assert_allclose(np.asarray(text.apply(params, ids, model)),
                               np.asarray(nnjax.apply(params["mlp"], pooled, model.head)), rtol=1e-6)
    probs = np.asarray(text.predict(params, ids, model), np.float64)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-5)
    scores = np.asarray(text.token_scores(params, model))
    assert scores.shape == (20, 4)
    one_word = np.array([[5, PAD_ID, PAD_ID]], np.int32)
    np.testing.assert_allclose(np.asarray(text.apply(params, one_word, model))[0], scores[5], rtol=1e-5)


def test_embedding_gradient_matches_the_closed_form(key, rng):
    # With no hidden layer, logits = pooled @ W + b, so d sum(logits) / d E[j] = sum_texts (c_j / len) W.
    model = text.EmbeddingBag(n_ids=8, dim=3, output="identity")
    params = text.init(key, model)
    ids, lengths = random_ids(rng, 12, 5, 8)
    grad = jax.grad(lambda p: jnp.sum(text.apply(p, ids, model)))(params)["embedding"]
    share = np.zeros(8)
    for seq, length in zip(ids, lengths):
        for t in seq[:length]:
            share[t] += 1.0 / length
    w = np.asarray(params["mlp"][0]["w"], np.float64)[:, 0]
    np.testing.assert_allclose(np.asarray(grad), share[:, None] * w[None, :], rtol=1e-5, atol=1e-7)
    np.testing.assert_array_equal(np.asarray(grad[PAD_ID]), 0.0)


@pytest.fixture(scope="module")
def word_task():
    """Texts whose label is whether they hold more 'spam' ids (2..6) than 'ham' ids (7..11)."""
    rng = np.random.default_rng(7)
    ids, _ = random_ids(rng, 240, 6, 12)
    ids[ids == UNKNOWN_ID] = PAD_ID
    spam = np.sum((ids >= 2) & (ids <= 6), axis=1)
    ham = np.sum(ids >= 7, axis=1)
    keep = spam != ham
    return ids[keep], (spam > ham)[keep].astype(np.int32)


@pytest.fixture(scope="module")
def trained(word_task):
    ids, y = word_task
    model = text.EmbeddingBag(n_ids=12, dim=4, hidden=(8,), activation="tanh")
    # one optimizer object, so a second identical run reuses the compiled program
    settings = dict(loss="binary_cross_entropy", optimizer=optax.adam(0.05), epochs=40, batch_size=32,
                    validation=(ids[150:], y[150:]))
    result = text.fit_text(jax.random.key(3), model, (ids[:150], y[:150]), **settings)
    return model, settings, result


def test_fit_text_learns_which_words_matter(word_task, trained):
    ids, y = word_task
    model, _, result = trained
    history = {k: np.asarray(v) for k, v in result.history.items()}
    assert set(history) >= {"loss", "accuracy", "skipped", "val_loss", "val_accuracy"}
    assert all(v.shape[0] == 40 for v in history.values())
    assert all(history[k].shape == (40,) for k in ("loss", "accuracy", "skipped", "val_loss", "val_accuracy"))
    assert history["loss"][-1] < 0.5 * history["loss"][0]
    assert np.all(history["skipped"] == 0)
    # the label is a simple function of word counts: unseen texts should be almost always right
    assert history["val_accuracy"][-1] >= 0.9
    predicted = (np.asarray(text.predict(result.params, ids[150:], model))[:, 0] > 0.5).astype(int)
    np.testing.assert_allclose(np.mean(predicted == y[150:]), history["val_accuracy"][-1], atol=1e-6)
    scores = np.asarray(text.token_scores(result.params, model))[:, 0]
    assert scores[2:7].min() > scores[7:12].max()  # every spam id scores above every ham id
    np.testing.assert_array_equal(np.asarray(result.params["embedding"][PAD_ID]), 0.0)


def test_fit_text_is_deterministic_and_uses_the_fit_key_schedule(word_task, trained):
    ids, y = word_task
    model, settings, result = trained
    # parameters start from nnjax.training.split_run_key(key)[0], as in nnjax.fit
    start = text.init(nnjax.training.split_run_key(jax.random.key(3))[0], model)
    again = text.fit_text(jax.random.key(3), model, (ids[:150], y[:150]), params=start, **settings)
    np.testing.assert_array_equal(np.asarray(again.params["embedding"]), np.asarray(result.params["embedding"]))
    other = text.fit_text(jax.random.key(4), model, (ids[:150], y[:150]), params=start, **settings)
    assert not np.array_equal(np.asarray(other.params["embedding"]), np.asarray(result.params["embedding"]))


def test_empty_and_unknown_texts_have_documented_predictions(key):
    bow = BagOfWords().fit(["free money", "meeting at noon"])
    ids = bow.tokens_to_ids(["", "zebra quokka", "free zebra"], max_len=4)
    np.testing.assert_array_equal(ids[:, :2], [[PAD_ID, PAD_ID], [UNKNOWN_ID, UNKNOWN_ID], [ids[2, 0], UNKNOWN_ID]])
    for ignore in (False, True):
        model = text.EmbeddingBag(n_ids=bow.n_ids, dim=3, ignore_unknown=ignore)
        params = text.init(key, model)
        out = np.asarray(text.predict(params, ids, model))
        empty = np.asarray(nnjax.predict(params["mlp"], jnp.zeros((1, 3)), model.head))[0]
        np.testing.assert_allclose(out[0], empty, rtol=1e-6)  # an empty text sees only the head's biases
        unknown_only = np.asarray(text.pool(params, ids[1:2], model))[0]
        expected = 0.0 if ignore else np.asarray(params["embedding"][UNKNOWN_ID])
        np.testing.assert_allclose(unknown_only, expected, rtol=1e-6)


def test_bad_inputs_get_clear_errors(key):
    model = text.EmbeddingBag(n_ids=5, dim=2)
    params = text.init(key, model)
    with pytest.raises(TypeError, match="ids: expected integer token ids"):
        text.apply(params, np.array([[2.0, 3.0]]), model)
    with pytest.raises(ValueError, match=r"ids: expected token ids in \[0, 5\).*got 7"):
        text.apply(params, np.array([[2, 7]]), model)
    with pytest.raises(ValueError, match=r"ids: expected token ids in \[0, 5\).*got -1"):
        text.apply(params, np.array([[-1, 2]]), model)
    with pytest.raises(ValueError, match="ids: expected a 2-D array"):
        text.apply(params, np.array([2, 3]), model)
    with pytest.raises(ValueError, match="n_ids: expected at least 3"):
        text.EmbeddingBag(n_ids=2, dim=4)
    with pytest.raises(ValueError, match="dim: expected an int >= 1"):
        text.EmbeddingBag(n_ids=5, dim=0)
    ids = np.array([[2, 3], [4, 0]])
    common = dict(loss="binary_cross_entropy", optimizer=optax.sgd(0.1), epochs=1)
    with pytest.raises(ValueError, match=r"y: expected labels in \{0, 1\}"):
        text.fit_text(key, model, (ids, [1, 2]), batch_size=2, **common)
    with pytest.raises(ValueError, match=r"batch_size: expected at most the number of examples \(2\)"):
        text.fit_text(key, model, (ids, [1, 0]), batch_size=3, **common)
    with pytest.raises(ValueError, match="validation: expected a pair"):
        text.fit_text(key, model, (ids, [1, 0]), batch_size=2, validation=ids, **common)
