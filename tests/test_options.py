"""The settings record (nnjax.Options): one checked record for fit, plan, populations and the runner."""

import inspect

import jax
import numpy as np
import optax
import pytest

import nnjax
from nnjax import fitting, population
from nnjax.train import runner


@pytest.fixture(scope="module")
def problem():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(40, 4)).astype(np.float32)
    y = (x[:, 0] - x[:, 2] > 0).astype(np.int32)
    net = nnjax.MLP((4, 5, 2), activation="tanh", output="softmax")
    options = nnjax.Options(loss="softmax_cross_entropy", optimizer="adam", learning_rate=0.02, epochs=4,
                            batch_size=16, diagnostics=False)
    return net, (x, y), options


def test_a_record_and_its_keywords_are_one_run_and_one_program(problem, key):
    net, data, options = problem
    traces = []

    def counted(logits, labels):  # traced once per compile of the training program
        traces.append(1)
        return nnjax.losses.softmax_cross_entropy(logits, labels)

    by_record = nnjax.fit(key, net, data, options, loss=counted)
    by_keywords = nnjax.fit(key, net, data, loss=counted, optimizer="adam", learning_rate=0.02, epochs=4,
                            batch_size=16, diagnostics=False)
    assert len(traces) == 1  # equal settings, however given, share the compiled program
    np.testing.assert_array_equal(by_record.history["loss"], by_keywords.history["loss"])
    # a keyword given with a record replaces its field
    assert nnjax.fit(key, net, data, options, epochs=2).history["loss"].shape == (2,)
    assert options.epochs == 4  # the record itself is frozen


def test_a_record_is_checked_when_built_and_again_when_replaced():
    options = nnjax.Options(loss="mse", optimizer="sgd", epochs=3, batch_size=8, early_stopping=2)
    assert options.early_stopping == nnjax.EarlyStopping(patience=2) and options.rate == 0.01
    assert options == options.replace() and hash(options) == hash(options.replace())
    with pytest.raises(ValueError, match=r"l2: expected a finite number >= 0, got -1.0"):
        options.replace(l2=-1.0)
    with pytest.raises(TypeError, match="epoch: .*did you mean 'epochs'"):
        nnjax.Options.of(options, epoch=3)
    with pytest.raises(dataclasses_frozen_error()):
        options.epochs = 5


def dataclasses_frozen_error():
    import dataclasses

    return dataclasses.FrozenInstanceError


def test_the_settings_are_written_once_and_shown_in_every_signature():
    fields = [f for f in nnjax.Options.__dataclass_fields__]
    for function in (nnjax.fit, fitting.plan, nnjax.fit_population, population.plan_population, nnjax.text.fit_text):
        parameters = inspect.signature(function).parameters
        assert set(fields) <= set(parameters), function.__name__
        assert parameters["loss"].kind is inspect.Parameter.KEYWORD_ONLY
        assert parameters["loss"].default is inspect.Parameter.empty  # required, as before


def test_a_population_takes_the_same_record(problem):
    net, data, options = problem
    keys = jax.random.split(jax.random.key(0), 3)
    rates = [0.01, 0.02, 0.05]
    by_record = nnjax.fit_population(keys, net, data, options, learning_rate=rates)
    by_keywords = nnjax.fit_population(keys, net, data, loss="softmax_cross_entropy", optimizer="adam",
                                       learning_rate=rates, epochs=4, batch_size=16, diagnostics=False)
    np.testing.assert_array_equal(by_record.history["loss"], by_keywords.history["loss"])
    # member 1 is the separate fit with its own learning rate
    single = nnjax.fit(keys[1], net, data, options)
    np.testing.assert_allclose(by_record.history["loss"][1], single.history["loss"], rtol=1e-5)


def test_a_population_through_the_runner_is_the_population_in_one_call(problem):
    net, data, options = problem
    keys = jax.random.split(jax.random.key(2), 2)
    whole = nnjax.fit_population(keys, net, data, options)
    plan = population.plan_population(keys, net, data, options)
    seen = []
    outcome = runner.train(plan, options.epochs, every=2, hooks=[lambda done, metrics: seen.append(done)])
    assert seen == [2, 4] and outcome.result.history["loss"].shape == (2, 4)
    np.testing.assert_allclose(outcome.result.history["loss"], whole.history["loss"], rtol=1e-6)
    for a, b in zip(jax.tree_util.tree_leaves(whole.params), jax.tree_util.tree_leaves(outcome.result.params)):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_an_optax_object_with_a_learning_rate_is_refused_everywhere(problem, key):
    net, data, options = problem
    with pytest.raises(ValueError, match="learning_rate: a fixed optax optimizer"):
        nnjax.fit(key, net, data, options, optimizer=optax.sgd(0.1))  # the record's rate does not apply
    assert nnjax.fit(key, net, data, options, optimizer=optax.sgd(0.1), learning_rate=None).history["loss"].shape == (4,)
