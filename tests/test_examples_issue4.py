"""Smoke tests: the perceptron, single-neuron and spam examples run with --quick and measure sense.

Each script's ``main(argv)`` is loaded with ``runpy`` and run in this process (sharing the jax
import), then its returned measurements are checked against what the script claims.
"""

import pathlib

import numpy as np

EXAMPLES = pathlib.Path(__file__).resolve().parent.parent / "examples"


def test_perceptron_example(run_example, tmp_path):
    measured, printed = run_example("perceptron")
    for row in measured["separable"]["rows"]:
        assert row["converged"].all()
        assert row["totals"].max() <= row["bound"]
    assert all(not r["converged"] for r in measured["xor"]["perceptron"].values())
    assert max(r["accuracy"] for r in measured["xor"]["perceptron"].values()) <= 0.8
    assert measured["xor"]["mlp_accuracy"] >= 0.95
    assert (tmp_path / "perceptron.png").stat().st_size > 0
    assert "within Novikoff's bound" in printed


def test_single_neuron_example(run_example):
    measured, _ = run_example("single_neuron")
    for row in measured["logistic"]:
        assert row["coef_diff"] <= 1e-2 * row["coef_scale"]
        assert abs(row["accuracy"] - row["sk_accuracy"]) <= 0.02
    assert measured["linear"]["coef_diff"] <= 1e-2 * measured["linear"]["coef_scale"]
    assert measured["softmax"]["sum_error"] <= 1e-5
    assert measured["softmax"]["prob_diff"] <= 5e-2


def test_spam_example(run_example):
    measured, printed = run_example("spam_vs_ham")
    assert "THE CORPUS IS ILLUSTRATIVE" in (EXAMPLES / "spam_vs_ham.py").read_text()
    assert "illustrative corpus" in printed
    for name in ("bag_of_words", "embedding"):
        result = measured[name]
        assert set(result) == {"accuracy", "precision", "recall"}
        assert all(0.0 <= v <= 1.0 for v in result.values())
        # a few dozen test messages from templates: both models should be well above chance
        assert result["accuracy"] >= 0.75, (name, result)
    spam_words_a, spam_words_b = measured["words"]
    assert len(spam_words_a) == len(spam_words_b) == 8
    assert np.isfinite(measured["n_test"])
