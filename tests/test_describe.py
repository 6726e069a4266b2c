"""nnjax.summary: parameter counts by hand and against the arrays nnjax.init draws."""

import jax
import numpy as np
import pytest

import nnjax


def _leaves(tree):
    return sum(int(np.prod(leaf.shape)) for leaf in jax.tree.leaves(tree))


def test_counts_match_a_hand_computation_and_init():
    net = nnjax.MLP((5, 16, 16, 8, 3), activation=("relu", "tanh", "gelu"), output="softmax",
                    dropout=(0.1, 0.0, 0.3), batch_norm=True, residual=True)
    s = nnjax.summary(net)
    # By hand: w + b + gamma + beta per hidden layer; layer 2 (16 -> 16) skips by identity,
    # layer 3 (16 -> 8) by a 16 x 8 projection; the output layer has w + b only.
    hand = [5 * 16 + 16 + 2 * 16, 16 * 16 + 16 + 2 * 16, 16 * 8 + 8 + 2 * 8 + 16 * 8, 8 * 3 + 3]
    assert [row.params for row in s.rows] == hand == [128, 304, 280, 27]
    assert s.total_params == 739 == _leaves(nnjax.init(jax.random.key(0), net))
    assert s.total_state == 2 * (16 + 16 + 8) == _leaves(nnjax.init_state(net))
    assert [row.skip for row in s.rows] == ["-", "identity", "projection", "-"]
    assert [row.activation for row in s.rows] == ["relu", "tanh", "gelu", "softmax"]
    assert [row.dropout for row in s.rows] == [0.1, 0.0, 0.3, None]
    text = str(s)
    assert text.splitlines()[0] == "MLP 5-16-16-8-3" and "16 -> 8" in text and "projection" in text
    assert text.splitlines()[-1] == "total parameters: 739 (trained), 80 (state)"


def test_plain_network_and_text_model():
    s = nnjax.summary(nnjax.MLP((784, 10)))
    assert s.total_params == 7850 and len(s.rows) == 1 and s.rows[0].name == "output"
    bag = nnjax.text.EmbeddingBag(n_ids=50, dim=8, hidden=(4,), n_outputs=1)
    s = nnjax.summary(bag)
    assert [row.params for row in s.rows] == [50 * 8, 8 * 4 + 4, 4 + 1]
    assert s.total_params == _leaves(nnjax.text.init(jax.random.key(0), bag))


def test_anything_else_is_refused():
    with pytest.raises(TypeError, match="model: expected an nnjax.MLP or nnjax.text.EmbeddingBag, got dict"):
        nnjax.summary({"sizes": (1, 2)})
