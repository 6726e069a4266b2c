"""nnjax.plots: figures with the right content, valid PNG files, clear errors."""

import os
import sys

import numpy as np
import pytest

pytest.importorskip("matplotlib", reason="matplotlib (the 'plots' extra) is needed for nnjax.plots")

from matplotlib import image as mpl_image  # noqa: E402
from sklearn.metrics import confusion_matrix as sk_confusion_matrix  # noqa: E402

from nnjax import plots  # noqa: E402

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def assert_valid_png(path, min_bytes=5_000):
    data = path.read_bytes()
    assert data[:8] == PNG_SIGNATURE, f"{path.name} is not a PNG"
    assert len(data) >= min_bytes, f"{path.name} has only {len(data)} bytes"
    pixels = mpl_image.imread(path)
    assert pixels.ndim == 3 and pixels.shape[0] >= 200 and pixels.shape[1] >= 200
    assert np.ptp(pixels[..., :3]) > 0.5, "the image is (nearly) blank"  # something dark on white
    return pixels


def _history(rng, epochs=15, members=None, layers=3):
    lead = () if members is None else (members,)
    decay = np.exp(-np.arange(epochs) / 5.0)
    noise = lambda: 0.02 * rng.standard_normal(lead + (epochs,))  # noqa: E731
    return {
        "loss": 1.0 * decay + 0.1 + np.abs(noise()),
        "val_loss": 1.1 * decay + 0.2 + np.abs(noise()),
        "accuracy": 1.0 - 0.9 * decay + noise(),
        "val_accuracy": 1.0 - decay + noise(),
        "layer_grad_norm": np.exp(rng.standard_normal(lead + (epochs, layers))) * np.logspace(-3, 0, layers),
    }


def _lines(ax):
    return {line.get_label(): line for line in ax.get_lines()}


def test_history_figure_has_train_and_validation_curves(tmp_path, rng):
    history = _history(rng)
    fig = plots.plot_history(history, path=tmp_path / "loss.png", title="run")
    loss_ax, acc_ax = fig.axes
    assert loss_ax.get_title() == "loss" and acc_ax.get_title() == "accuracy"
    lines = _lines(loss_ax)
    np.testing.assert_allclose(lines["train loss"].get_ydata(), history["loss"])
    np.testing.assert_allclose(lines["validation loss"].get_ydata(), history["val_loss"])
    np.testing.assert_array_equal(lines["train loss"].get_xdata(), np.arange(1, 16))
    assert loss_ax.get_yscale() == "log"  # positive losses over orders of magnitude read better
    np.testing.assert_allclose(_lines(acc_ax)["validation accuracy"].get_ydata(), history["val_accuracy"])
    assert_valid_png(tmp_path / "loss.png")


def test_population_history_draws_members_and_their_mean(rng):
    history = _history(rng, members=4)
    fig = plots.plot_history({k: history[k] for k in ("loss", "val_loss")})
    ax = fig.axes[0]
    assert len(ax.get_lines()) == 2 * (4 + 1)
    mean = _lines(ax)["train loss (mean of 4)"]
    np.testing.assert_allclose(mean.get_ydata(), history["loss"].mean(axis=0))


def test_regression_history_gets_an_r2_panel_and_nan_epochs_are_gaps(rng):
    history = {"loss": np.array([1.0, 0.5, np.nan, np.nan]), "val_r2": np.array([0.1, 0.5, np.nan, np.nan])}
    fig = plots.plot_history(history)
    assert [ax.get_title() for ax in fig.axes] == ["loss", "R^2"]
    assert np.isnan(_lines(fig.axes[1])["validation R^2"].get_ydata()[2:]).all()


def test_gradient_norm_figure_has_one_log_curve_per_layer(tmp_path, rng):
    history = _history(rng, layers=4)
    fig = plots.plot_gradient_norms(history, path=tmp_path / "g.png")
    ax = fig.axes[0]
    assert ax.get_yscale() == "log"
    lines = _lines(ax)
    assert list(lines) == ["layer 1", "layer 2", "layer 3", "output layer"]
    np.testing.assert_allclose(lines["layer 2"].get_ydata(), history["layer_grad_norm"][:, 1])
    assert_valid_png(tmp_path / "g.png")
    population = _history(rng, members=3, layers=2)
    ax = plots.plot_gradient_norms(population).axes[0]
    np.testing.assert_allclose(_lines(ax)["layer 1"].get_ydata(), population["layer_grad_norm"][:, :, 0].mean(0))


def test_confusion_matrix_counts_match_scikit_learn(rng):
    y_true = rng.integers(0, 5, size=300)
    y_pred = np.where(rng.random(300) < 0.7, y_true, rng.integers(0, 5, size=300))
    np.testing.assert_array_equal(plots.confusion_matrix(y_true, y_pred), sk_confusion_matrix(y_true, y_pred))
    np.testing.assert_array_equal(plots.confusion_matrix([0, 0], [0, 0], n_classes=3),
                                  [[2, 0, 0], [0, 0, 0], [0, 0, 0]])


def test_confusion_matrix_figure_shows_counts_and_accuracy(tmp_path, rng):
    y_true = rng.integers(0, 3, size=60)
    y_pred = np.where(rng.random(60) < 0.8, y_true, (y_true + 1) % 3)
    names = ["cat", "dog", "bird"]
    fig = plots.plot_confusion_matrix(y_true, y_pred, class_names=names, path=tmp_path / "cm.png")
    ax = fig.axes[0]
    counts = sk_confusion_matrix(y_true, y_pred)
    shown = sorted(int(t.get_text()) for t in ax.texts)
    assert shown == sorted(counts.ravel().tolist())
    assert [t.get_text() for t in ax.get_xticklabels()] == names
    assert f"accuracy {np.mean(y_true == y_pred):.3f}" in ax.get_title()
    assert_valid_png(tmp_path / "cm.png")


def test_bad_input_is_named(rng):
    with pytest.raises(ValueError, match="history: expected a 'loss' entry"):
        plots.plot_history({"val_loss": np.ones(3)})
    with pytest.raises(ValueError, match="layer_grad_norm"):
        plots.plot_gradient_norms({"loss": np.ones(3)})
    with pytest.raises(ValueError, match="y_pred: expected 3 predictions"):
        plots.confusion_matrix([0, 1, 1], [0, 1])
    with pytest.raises(ValueError, match="n_classes: expected more than the largest class index"):
        plots.confusion_matrix([0, 4], [0, 1], n_classes=3)


def test_saving_is_atomic_and_leaves_no_temporary_files(tmp_path, rng):
    path = tmp_path / "sub" / "loss.png"
    plots.plot_history(_history(rng), path=path)
    plots.plot_history(_history(rng, epochs=5), path=path)  # overwrite in place
    assert sorted(p.name for p in path.parent.iterdir()) == ["loss.png"]
    assert_valid_png(path)
    umask = os.umask(0)
    os.umask(umask)
    assert path.stat().st_mode & 0o777 == 0o666 & ~umask  # not mkstemp's private 0600


def test_missing_matplotlib_gives_an_install_hint(monkeypatch):
    for name in [m for m in sys.modules if m == "matplotlib" or m.startswith("matplotlib.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib now raises ImportError
    with pytest.raises(ImportError, match=r"pip install 'nnjax\[plots\]'"):
        plots.plot_history({"loss": np.ones(3)})
