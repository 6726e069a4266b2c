"""Single neurons are classical models: checks against scikit-learn and float64 NumPy.

* one sigmoid output, no hidden layer = logistic regression (breast cancer);
* one linear output = linear regression (diabetes);
* a softmax output layer = multinomial logistic regression (digits): probabilities sum to one.

Each network is trained full-batch by nnjax.fit with Adam and a cosine schedule, long enough to
reach the optimum; scikit-learn's solvers (float64, tight tolerances) give the reference.
"""

import numpy as np
import optax
import pytest
import jax
from sklearn.linear_model import LinearRegression, LogisticRegression

import nnjax

# Five of breast cancer's 30 features: with all 30 the classes are linearly separable, so the
# unpenalised maximum-likelihood weights do not exist (they grow without bound).
CANCER_FEATURES = [0, 1, 4, 7, 8]  # mean radius, texture, smoothness, concave points, symmetry


def full_batch_fit(net, x, y, loss, epochs, l2=0.0, lr=0.05):
    adam = optax.adam(optax.cosine_decay_schedule(lr, epochs, alpha=0.01))
    return nnjax.fit(jax.random.key(0), net, (x, y), loss=loss, optimizer=adam, epochs=epochs,
                     batch_size=len(x), l2=l2, diagnostics=False)


def sigmoid64(z):
    return 1.0 / (1.0 + np.exp(-z))


@pytest.fixture(scope="module")
def cancer():
    data = nnjax.data.load_dataset("breast_cancer")
    _, x = nnjax.data.standardize(data.x[:, CANCER_FEATURES])
    return x, data.y


@pytest.fixture(scope="module")
def logistic_neuron(cancer):
    x, y = cancer
    net = nnjax.MLP((x.shape[1], 1), output="sigmoid")
    return net, full_batch_fit(net, x, y, "binary_cross_entropy", epochs=3000)


def test_sigmoid_neuron_is_logistic_regression(cancer, logistic_neuron):
    x, y = cancer
    net, result = logistic_neuron
    # C=inf is scikit-learn's unpenalised logistic regression (penalty=None is deprecated in 1.8+)
    reference = LogisticRegression(C=np.inf, tol=1e-12, max_iter=10_000).fit(x.astype(np.float64), y)
    w = np.asarray(result.params[0]["w"], np.float64)[:, 0]
    b = float(result.params[0]["b"][0])
    scale = np.abs(reference.coef_).max()
    print(f"max |w - sklearn| = {np.abs(w - reference.coef_[0]).max():.2e} (|coef| up to {scale:.2f})")
    np.testing.assert_allclose(w, reference.coef_[0], atol=1e-3 * scale)
    np.testing.assert_allclose(b, reference.intercept_[0], atol=1e-3 * scale)
    probs = np.asarray(nnjax.predict(result.params, x, net))[:, 0]
    np.testing.assert_allclose(probs, reference.predict_proba(x.astype(np.float64))[:, 1], atol=1e-3)
    # the neuron is sigmoid(x . w + b), nothing more
    np.testing.assert_allclose(probs, sigmoid64(x.astype(np.float64) @ w + b), rtol=1e-5, atol=1e-6)


def test_logistic_neuron_reaches_a_stationary_point(cancer, logistic_neuron):
    # independent of scikit-learn: the float64 gradient of the mean log-loss vanishes at the solution
    x, y = cancer
    _, result = logistic_neuron
    x64 = np.asarray(x, np.float64)
    w = np.asarray(result.params[0]["w"], np.float64)[:, 0]
    b = float(result.params[0]["b"][0])
    residual = sigmoid64(x64 @ w + b) - y
    gradient = np.append(x64.T @ residual, residual.sum()) / len(y)
    assert np.abs(gradient).max() < 1e-4
    assert float(result.history["loss"][-1]) <= float(result.history["loss"][0])


def test_linear_neuron_is_linear_regression():
    data = nnjax.data.load_dataset("diabetes")
    _, x = nnjax.data.standardize(data.x)
    y = ((data.y - data.y.mean()) / data.y.std()).astype(np.float32)
    net = nnjax.MLP((10, 1), output="identity")
    result = full_batch_fit(net, x, y, "mse", epochs=3000)
    reference = LinearRegression().fit(x.astype(np.float64), y.astype(np.float64))
    w = np.asarray(result.params[0]["w"], np.float64)[:, 0]
    print(f"max |w - sklearn| = {np.abs(w - reference.coef_).max():.2e}")
    np.testing.assert_allclose(w, reference.coef_, atol=5e-3)
    np.testing.assert_allclose(float(result.params[0]["b"][0]), reference.intercept_, atol=5e-3)
    predicted = np.asarray(nnjax.predict(result.params, x, net))[:, 0]
    np.testing.assert_allclose(predicted, reference.predict(x.astype(np.float64)), atol=5e-3)
    # the mean squared error at the optimum equals scikit-learn's (the loss has no factor 1/2)
    mse = np.mean((reference.predict(x.astype(np.float64)) - y) ** 2)
    np.testing.assert_allclose(float(result.history["loss"][-1]), mse, rtol=1e-3)


def test_softmax_layer_gives_probabilities_on_digits():
    data = nnjax.data.load_dataset("digits")
    (x_train, y_train), (x_test, y_test) = nnjax.data.split(0, data.x, data.y, stratify=data.y)
    _, x_train, x_test = nnjax.data.standardize(x_train, x_test)
    n, c = len(x_train), 1.0
    net = nnjax.MLP((64, 10), output="softmax")
    # scikit-learn minimises 1/2 |W|^2 + C sum(loss); divided by C n that is mean(loss) + |W|^2 / (2 C n)
    result = full_batch_fit(net, x_train, y_train, "softmax_cross_entropy", epochs=600, l2=1 / (2 * c * n),
                            lr=0.2)
    probs = np.asarray(nnjax.predict(result.params, x_test, net), np.float64)
    assert probs.shape == (len(x_test), 10)
    assert np.all(probs >= 0) and np.all(probs <= 1)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-5)
    logits = np.asarray(nnjax.apply(result.params, x_test, net), np.float64)
    softmax = np.exp(logits - logits.max(axis=1, keepdims=True))
    np.testing.assert_allclose(probs, softmax / softmax.sum(axis=1, keepdims=True), atol=1e-6)
    reference = LogisticRegression(C=c, tol=1e-10, max_iter=5000).fit(x_train.astype(np.float64), y_train)
    print(f"max |p - sklearn p| = {np.abs(probs - reference.predict_proba(x_test)).max():.2e}")
    np.testing.assert_allclose(probs, reference.predict_proba(x_test.astype(np.float64)), atol=1e-2)
    accuracy = np.mean(probs.argmax(axis=1) == y_test)
    # a linear softmax classifier on digits is well above 90% (scikit-learn's gets about 97%)
    assert accuracy >= 0.9
    assert abs(accuracy - reference.score(x_test.astype(np.float64), y_test)) <= 3 / len(y_test)
