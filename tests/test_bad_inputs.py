"""One table of bad inputs, through the Python API and the command line alike.

Every row must fail on the host, before anything compiles, with an error that names the
argument in the caller's terms (``learning_rate`` for the API, ``--lr`` for the CLI,
``learning_rate_init`` for the estimators). At the command line: exit code 2, exactly one line on
stderr starting ``nnjax: error:``, no traceback, and no run directory left behind.
"""

from __future__ import annotations

import json
import pathlib

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import nnjax
from nnjax import optim
from nnjax.cli import main
from nnjax.population import fit_population
from nnjax.sklearn import MLPClassifier, MLPRegressor

NAN, INF = float("nan"), float("inf")
X = np.random.default_rng(0).normal(size=(12, 2)).astype(np.float32)
Y = np.arange(12) % 3
NET = nnjax.MLP((2, 4, 3))
FIT = dict(loss="softmax_cross_entropy", optimizer="sgd", epochs=1, batch_size=4)


def fit(net=NET, data=(X, Y), key=0, **changes):
    kwargs = {**FIT, **changes}
    return nnjax.fit(None if key is None else jax.random.key(key), net, data, **kwargs)


def population(**changes):
    kwargs = {**FIT, "learning_rate": 0.1, **changes}
    return fit_population(jax.random.split(jax.random.key(0), 2), NET, (X, Y), **kwargs)


def classifier(**params):
    return MLPClassifier(**{"hidden_layer_sizes": (4,), "max_iter": 2, **params}).fit(X, Y)


class _NotAnOptimizer:
    pass


class _Resumed:
    """A finished 1-epoch fit of ``NET`` with SGD, trained once on first use."""

    result = None

    @classmethod
    def get(cls):
        if cls.result is None:
            cls.result = fit()
        return cls.result


# name -> (call, exception type, the argument's name the message must contain)
API = {
    # nnjax.fit: optimizer numbers, penalties, dropout
    "fit learning_rate nan": (lambda: fit(learning_rate=NAN), ValueError, "learning_rate"),
    "fit learning_rate -0.1": (lambda: fit(learning_rate=-0.1), ValueError, "learning_rate"),
    "fit learning_rate 0": (lambda: fit(learning_rate=0.0), ValueError, "learning_rate"),
    "fit learning_rate inf": (lambda: fit(learning_rate=INF), ValueError, "learning_rate"),
    "fit learning_rate string": (lambda: fit(learning_rate="fast"), ValueError, "learning_rate"),
    "fit learning_rate bool": (lambda: fit(learning_rate=True), TypeError, "learning_rate"),
    "fit l2 -1": (lambda: fit(l2=-1.0), ValueError, "l2"),
    "fit l1 nan": (lambda: fit(l1=NAN), ValueError, "l1"),
    "fit l1 inf": (lambda: fit(l1=INF), ValueError, "l1"),
    "fit dropout 1": (lambda: fit(dropout=1.0), ValueError, "dropout"),
    "fit dropout -0.1": (lambda: fit(dropout=-0.1), ValueError, "dropout"),
    "fit clip_norm 0": (lambda: fit(clip_norm=0.0), ValueError, "clip_norm"),
    "fit clip_value nan": (lambda: fit(clip_value=NAN), ValueError, "clip_value"),
    "fit unknown optimizer": (lambda: fit(optimizer="sgdd"), ValueError, "optimizer"),
    "fit optimizer object": (lambda: fit(optimizer=_NotAnOptimizer()), ValueError, "optimizer"),
    "fit on_nonfinite": (lambda: fit(on_nonfinite="ignore"), ValueError, "on_nonfinite"),
    "fit epochs 0": (lambda: fit(epochs=0), ValueError, "epochs"),
    "fit epochs float": (lambda: fit(epochs=2.0), TypeError, "epochs"),
    "fit batch_size 0": (lambda: fit(batch_size=0), ValueError, "batch_size"),
    "fit batch_size > n": (lambda: fit(batch_size=13), ValueError, "batch_size"),
    "fit key None": (lambda: fit(key=None), ValueError, "key"),
    # nnjax.fit: data, labels, weights
    "fit data not a pair": (lambda: fit(data=X), ValueError, "data"),
    "fit x with NaN": (lambda: fit(data=(np.where(X > 1, np.nan, X), Y)), ValueError, "x"),
    "fit x too wide": (lambda: fit(data=(np.ones((12, 3), np.float32), Y)), ValueError, "x"),
    "fit label out of range": (lambda: fit(data=(X, np.where(Y == 2, 5, Y))), ValueError, "y"),
    "fit one class": (lambda: fit(data=(X, np.zeros(12, int))), ValueError, "y"),
    "fit one-output softmax": (lambda: fit(net=nnjax.MLP((2, 1)), data=(X, np.zeros(12, int))), ValueError, "net"),
    "fit class_weight unknown label": (lambda: fit(class_weight={7: 2.0}), ValueError, "class_weight"),
    "fit class_weight negative": (lambda: fit(class_weight={0: -1.0}), ValueError, "class_weight"),
    "fit class_weight nan": (lambda: fit(class_weight={1: NAN}), ValueError, "class_weight"),
    "fit sample_weight negative": (lambda: fit(sample_weight=-np.ones(12)), ValueError, "sample_weight"),
    "fit validation not a pair": (lambda: fit(validation=X), ValueError, "validation"),
    "fit resume other network": (lambda: fit(net=nnjax.MLP((2, 5, 3)), key=None, resume=_Resumed.get()),
                                 ValueError, "resume"),
    "fit resume other optimizer": (lambda: fit(optimizer="adam", key=None, resume=_Resumed.get()),
                                   ValueError, "resume"),
    # nnjax.fit: the settings record (nnjax.Options) and what fit checks against the network
    "fit early_stopping 0": (lambda: fit(early_stopping=0), ValueError, "early_stopping"),  # None is off
    "fit early_stopping -1": (lambda: fit(early_stopping=-1), ValueError, "early_stopping"),
    "fit early_stopping float": (lambda: fit(early_stopping=2.5), TypeError, "early_stopping"),
    "EarlyStopping min_delta -1": (lambda: nnjax.EarlyStopping(min_delta=-1), ValueError, "min_delta"),
    "EarlyStopping mode bogus": (lambda: nnjax.EarlyStopping(mode="bogus"), ValueError, "mode"),
    "EarlyStopping patience 2.5": (lambda: nnjax.EarlyStopping(patience=2.5), TypeError, "patience"),
    "EarlyStopping patience 0": (lambda: nnjax.EarlyStopping(patience=0), ValueError, "patience"),
    "fit monitor not recorded": (lambda: fit(early_stopping=nnjax.EarlyStopping(monitor="val_f1"), validation=(X, Y)),
                                 ValueError, "monitor"),
    "fit params of another network": (lambda: fit(params=nnjax.init(jax.random.key(0), nnjax.MLP((2, 5, 3)))),
                                      ValueError, "params"),
    "fit shuffle 'no'": (lambda: fit(shuffle="no"), TypeError, "shuffle"),
    "fit drop_last 1": (lambda: fit(drop_last=1), TypeError, "drop_last"),
    "fit resume {}": (lambda: fit(key=None, resume={}), TypeError, "resume"),
    "fit key of a population": (lambda: nnjax.fit(jax.random.split(jax.random.key(0), 3), NET, (X, Y), **FIT),
                                ValueError, "key"),
    "fit key an int": (lambda: nnjax.fit(0, NET, (X, Y), **FIT), TypeError, "key"),
    "fit loss returns a scalar": (lambda: fit(loss=lambda logits, y: jnp.mean(logits)), ValueError, "loss"),
    "fit loss returns (n, k)": (lambda: fit(loss=lambda logits, y: logits ** 2), ValueError, "loss"),
    "fit unknown setting": (lambda: fit(epoch=3), TypeError, "epoch"),
    "fit missing loss": (lambda: nnjax.fit(jax.random.key(0), NET, (X, Y), optimizer="sgd", epochs=1, batch_size=4),
                         TypeError, "loss"),
    "fit options not a record": (lambda: nnjax.fit(jax.random.key(0), NET, (X, Y), dict(FIT)), TypeError, "options"),
    "fit learning_rate with an optax object": (lambda: fit(optimizer=optax.sgd(0.1), learning_rate=0.1), ValueError,
                                               "learning_rate"),
    # nnjax.optim
    "make learning_rate nan": (lambda: optim.make("sgd", NAN), ValueError, "learning_rate"),
    "make momentum nan": (lambda: optim.make("momentum", 0.1, momentum=NAN), ValueError, "momentum"),
    "make momentum 1": (lambda: optim.make("nesterov", 0.1, momentum=1.0), ValueError, "momentum"),
    "make beta_1 1": (lambda: optim.make("adam", 0.1, beta_1=1.0), ValueError, "beta_1"),
    "make beta_2 < 0": (lambda: optim.make("adam", 0.1, beta_2=-0.1), ValueError, "beta_2"),
    "make epsilon 0": (lambda: optim.make("adam", 0.1, epsilon=0.0), ValueError, "epsilon"),
    "make weight_decay < 0": (lambda: optim.make("adamw", 0.1, weight_decay=-1.0), ValueError, "weight_decay"),
    "make clip_norm nan": (lambda: optim.make("rmsprop", 0.1, clip_norm=NAN), ValueError, "clip_norm"),
    "make unknown name": (lambda: optim.make("lbfgs", 0.1), ValueError, "optimizer"),
    "schedule decay_steps 0": (lambda: optim.schedule("exponential", 0.1, decay_steps=0), ValueError, "decay_steps"),
    "schedule decay_rate 0": (lambda: optim.schedule("exponential", 0.1, decay_steps=5, decay_rate=0.0),
                              ValueError, "decay_rate"),
    "schedule decay_rate 1.5": (lambda: optim.schedule("step", 0.1, decay_steps=5, steps=20, decay_rate=1.5),
                                ValueError, "decay_rate"),
    "schedule no steps": (lambda: optim.schedule("cosine", 0.1), ValueError, "steps"),
    "schedule warmup_steps < 0": (lambda: optim.schedule("warmup_cosine", 0.1, steps=10, warmup_steps=-1),
                                  ValueError, "warmup_steps"),
    "schedule learning_rate < 0": (lambda: optim.schedule("cosine", -1.0, steps=10), ValueError, "learning_rate"),
    "schedule final_fraction 2": (lambda: optim.schedule("cosine", 0.1, steps=10, final_fraction=2.0),
                                  ValueError, "final_fraction"),
    "schedule unknown name": (lambda: optim.schedule("zigzag", 0.1), ValueError, "schedule"),
    # nnjax.fit_population
    "population learning_rate < 0": (lambda: population(learning_rate=[0.1, -0.1]), ValueError, "learning_rate"),
    "population l2 nan": (lambda: population(l2=[NAN, 0.0]), ValueError, "l2"),
    "population dropout 1": (lambda: population(dropout=1.0), ValueError, "dropout"),
    "population init_scale 0": (lambda: population(init_scale=0.0), ValueError, "init_scale"),
    "population learning_rate shape": (lambda: population(learning_rate=[0.1, 0.2, 0.3]), ValueError,
                                       "learning_rate"),
    "population class_weight": (lambda: population(class_weight={9: 1.0}), ValueError, "class_weight"),
    "population zero keys": (lambda: fit_population(jax.random.split(jax.random.key(0), 0), NET, (X, Y),
                                                    learning_rate=0.1, **FIT), ValueError, "keys"),
    "population monitor not recorded": (lambda: population(early_stopping=nnjax.EarlyStopping(monitor="val_f1")),
                                        ValueError, "monitor"),
    "population batch_sharding": (lambda: population(batch_sharding=jax.sharding.SingleDeviceSharding(jax.devices()[0])),
                                  ValueError, "batch_sharding"),
    # nnjax.MLP
    "MLP one size": (lambda: nnjax.MLP((2,)), ValueError, "sizes"),
    "MLP width 0": (lambda: nnjax.MLP((2, 0, 3)), ValueError, "sizes"),
    "MLP unknown activation": (lambda: nnjax.MLP((2, 4, 3), activation="relux"), ValueError, "relux"),
    "MLP unknown output": (lambda: nnjax.MLP((2, 4, 3), output="softmaxx"), ValueError, "output"),
    "MLP dropout 1": (lambda: nnjax.MLP((2, 4, 3), dropout=1.0), ValueError, "dropout"),
    "MLP width 2.5": (lambda: nnjax.MLP((4, 2.5, 3)), TypeError, "sizes"),
    "MLP bn_epsilon -1": (lambda: nnjax.MLP((2, 4, 3), batch_norm=True, bn_epsilon=-1.0), ValueError, "bn_epsilon"),
    "predict with another network": (lambda: nnjax.predict(nnjax.init(jax.random.key(0), NET), X, nnjax.MLP((2, 5, 3))),
                                     ValueError, "net"),
    "MLP dropout per layer": (lambda: nnjax.MLP((2, 4, 3), dropout=(0.1, 0.2)), ValueError, "dropout"),
    # scikit-learn estimators (their own parameter names)
    "estimator learning_rate_init nan": (lambda: classifier(learning_rate_init=NAN), ValueError,
                                         "learning_rate_init"),
    "estimator learning_rate_init < 0": (lambda: classifier(learning_rate_init=-1.0), ValueError,
                                         "learning_rate_init"),
    "estimator momentum nan": (lambda: classifier(solver="sgd", momentum=NAN), ValueError, "momentum"),
    "estimator momentum 1.5": (lambda: classifier(solver="sgd", momentum=1.5), ValueError, "momentum"),
    "estimator beta_1 1": (lambda: classifier(beta_1=1.0), ValueError, "beta_1"),
    "estimator epsilon 0": (lambda: classifier(epsilon=0.0), ValueError, "epsilon"),
    "estimator alpha < 0": (lambda: classifier(alpha=-1.0), ValueError, "alpha"),
    "estimator alpha nan": (lambda: classifier(alpha=NAN), ValueError, "alpha"),
    "estimator l1 < 0": (lambda: classifier(l1=-1.0), ValueError, "l1"),
    "estimator dropout 1": (lambda: classifier(dropout=1.0), ValueError, "dropout"),
    "estimator clip_norm 0": (lambda: classifier(clip_norm=0.0), ValueError, "clip_norm"),
    "estimator tol nan": (lambda: classifier(tol=NAN), ValueError, "tol"),
    "estimator max_iter 0": (lambda: classifier(max_iter=0), ValueError, "max_iter"),
    "estimator validation_fraction 1": (lambda: classifier(early_stopping=True, validation_fraction=1.0),
                                        ValueError, "validation_fraction"),
    "fit learning_rate beyond float32": (lambda: fit(learning_rate=1e308), ValueError, "learning_rate"),
    "fit l2 beyond float32": (lambda: fit(l2=1e39), ValueError, "l2"),
    "checkpoint max_to_keep 0": (lambda: nnjax.checkpoint.save(pathlib.Path("unused"), _Resumed.get(), max_to_keep=0),
                                 ValueError, "max_to_keep"),
    "regressor learning_rate_init 0": (lambda: MLPRegressor(learning_rate_init=0.0).fit(X, X[:, 0]), ValueError,
                                       "learning_rate_init"),
}


@pytest.mark.parametrize("case", sorted(API))
def test_api_refuses_bad_input_naming_the_argument(case):
    call, error, name = API[case]
    with pytest.raises(error) as caught:
        call()
    message = str(caught.value)
    assert name in message, message
    assert "expected" in message or "unknown" in message, message


def test_optimizer_of_the_api_and_the_estimators_agree_on_the_rules():
    # the same value is refused with the same words, whatever the entry point calls it
    messages = []
    for call in (lambda: fit(learning_rate=-0.5), lambda: optim.make("sgd", -0.5),
                 lambda: classifier(learning_rate_init=-0.5)):
        with pytest.raises(ValueError) as caught:
            call()
        messages.append(str(caught.value).split(": ", 1)[1])
    assert len(set(messages)) == 1 and messages[0] == "expected a finite number > 0, got -0.5"


# name -> (flags after "nnjax train --dataset xor --hidden 4 --epochs 2", the name the message must contain)
CLI = {
    "--lr nan": (["--lr", "nan"], "--lr"),
    "--lr -0.1": (["--lr", "-0.1"], "--lr"),
    "--lr 0": (["--lr", "0"], "--lr"),
    "--lr inf": (["--lr", "inf"], "--lr"),
    "--lr not a number": (["--lr", "fast"], "--lr"),
    "--momentum nan": (["--optimizer", "momentum", "--momentum", "nan"], "--momentum"),
    "--momentum 1": (["--optimizer", "nesterov", "--momentum", "1"], "--momentum"),
    "--momentum < 0": (["--momentum", "-0.5"], "--momentum"),
    "--decay-rate 0": (["--schedule", "exponential", "--decay-rate", "0"], "--decay-rate"),
    "--decay-rate 1.5": (["--schedule", "step", "--decay-rate", "1.5"], "--decay-rate"),
    "--decay-epochs 0": (["--schedule", "exponential", "--decay-epochs", "0"], "--decay-epochs"),
    "--warmup-epochs < 0": (["--schedule", "warmup_cosine", "--warmup-epochs", "-1"], "--warmup-epochs"),
    "--clip-norm 0": (["--clip-norm", "0"], "--clip-norm"),
    "--clip-value nan": (["--clip-value", "nan"], "--clip-value"),
    "--l1 < 0": (["--l1", "-1"], "--l1"),
    "--l2 nan": (["--l2", "nan"], "--l2"),
    "--min-delta < 0": (["--early-stopping", "3", "--min-delta", "-1"], "--min-delta"),
    "--dropout 1": (["--dropout", "1.0"], "--dropout"),
    "--test-fraction 1": (["--test-fraction", "1.0"], "--test-fraction"),
    "--validation-fraction < 0": (["--validation-fraction", "-0.1"], "--validation-fraction"),
    "fractions sum to 1.1": (["--test-fraction", "0.6", "--validation-fraction", "0.5"], "--test-fraction"),
    "--epochs 0": (["--epochs", "0"], "--epochs"),
    "--batch-size 0": (["--batch-size", "0"], "--batch-size"),
    "--batch-size > rows": (["--batch-size", "100000"], "--batch-size"),
    "--seeds 0": (["--seeds", "0"], "--seeds"),
    "--early-stopping < 0": (["--early-stopping", "-1"], "--early-stopping"),
    "--checkpoint-every < 0": (["--checkpoint-every", "-1"], "--checkpoint-every"),
    "--hidden 0": (["--hidden", "4,0"], "--hidden"),
    "--optimizer unknown": (["--optimizer", "lbfgs"], "--optimizer"),
    "--schedule unknown": (["--schedule", "zigzag"], "--schedule"),
    "--loss mse for classes": (["--loss", "mse"], "--loss"),
    "--dataset unknown": (["--dataset", "mnist"], "mnist"),
    "--data a directory": (["--data", "{tmp}"], "--data: expected a file, got a directory"),
    "--data missing": (["--data", "{tmp}/nope.csv", "--target", "y"], "--data"),
    "--data one class": (["--data", "{tmp}/one.csv", "--target", "label"], "--target label"),
    "--data 200 classes of one row": (["--data", "{tmp}/many.csv", "--target", "label"], "--validation-fraction"),
    "--out under a file": (["--out", "{tmp}/one.csv/run"], "--out"),
    "--from-intact alone": (["--from-intact"], "--from-intact"),
    "--resume no run": (["--resume", "{tmp}/nowhere"], "--resume"),
    "--config missing": (["--config", "{tmp}/nowhere.json"], "--config"),
    "--lr beyond float32": (["--lr", "1e308"], "--lr"),
    "--l2 beyond float32": (["--l2", "1e39"], "--l2"),
    "--seed 2**70": (["--seed", str(2**70)], "--seed"),
    "--hidden beyond memory": (["--hidden", "100000000000"], "--hidden"),
    "--out ''": (["--out", ""], "--out: expected a path"),
    "--data ''": (["--data", ""], "--data: expected a path"),
    "--tensorboard a file": (["--tensorboard", "{tmp}/one.csv"], "--tensorboard: expected a directory"),
    "--out inside a run": (["--out", "{tmp}/run_dir/checkpoints/99"], "inside the run"),
    "--config epochs 2.7": (["--config", "{tmp}/epochs_2.7.json"], "--config: --epochs: expected an integer"),
    "--config epochs true": (["--config", "{tmp}/epochs_true.json"], "--config: --epochs: expected an integer"),
    "--config epochs null": (["--config", "{tmp}/epochs_null.json"], "--config: --epochs: expected a value"),
    "--config batch_norm 'yes'": (["--config", "{tmp}/switch.json"], "--config: --batch-norm: expected true or false"),
    "--config task bogus": (["--config", "{tmp}/task.json"], "--config: --task: expected one of"),
}


def _files(tmp: pathlib.Path) -> None:
    rng = np.random.default_rng(1)
    rows = "".join(f"{a:.3f},{b:.3f},{i}\n" for i, (a, b) in enumerate(rng.normal(size=(200, 2))))
    (tmp / "many.csv").write_text("a,b,label\n" + rows)
    (tmp / "one.csv").write_text("a,b,label\n" + "".join(f"{i},{i % 3},3\n" for i in range(20)))
    for name, value in {"epochs_2.7": 2.7, "epochs_true": True, "epochs_null": None}.items():
        (tmp / f"{name}.json").write_text(json.dumps({"args": {"epochs": value}}))
    (tmp / "switch.json").write_text(json.dumps({"args": {"batch_norm": "yes"}}))
    (tmp / "task.json").write_text(json.dumps({"args": {"task": "bogus"}}))
    run = tmp / "run_dir"  # what makes a directory a run: its config with preprocessing or checkpoints
    (run / "checkpoints").mkdir(parents=True)
    (run / "config.json").write_text("{}")


def _train(capsys, *flags: str) -> tuple[int, str]:
    code = main(["train", *flags])
    captured = capsys.readouterr()
    return code, captured.err


def _assert_one_line_error(code: int, err: str, name: str) -> None:
    assert code == 2, err
    assert err.startswith("nnjax: error: ") and err.count("\n") == 1 and "Traceback" not in err, err
    assert name in err, err


@pytest.mark.parametrize("case", sorted(CLI))
def test_cli_refuses_bad_input_in_one_line_naming_the_flag(case, tmp_path, capsys):
    _files(tmp_path)
    flags, name = CLI[case]
    flags = [f.replace("{tmp}", str(tmp_path)) for f in flags]
    out = tmp_path / "run"
    base = ["--dataset", "xor", "--hidden", "4", "--epochs", "2", "--quiet", "--no-plots"]
    if "--out" not in flags and "--resume" not in flags:
        base += ["--out", str(out)]
    before = sorted(p.name for p in tmp_path.iterdir())
    code, err = _train(capsys, *base, *flags)
    _assert_one_line_error(code, err, name)
    assert sorted(p.name for p in tmp_path.iterdir()) == before  # no run directory left behind


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    """A 20-epoch xor run (checkpoints every 10 epochs)."""
    out = tmp_path_factory.mktemp("bad_inputs") / "run"
    code = main(["train", "--dataset", "xor", "--hidden", "4", "--epochs", "20", "--checkpoint-every", "10",
                 "--quiet", "--no-plots", "--out", str(out)])
    assert code == 0
    return out


RESUME = {
    "--epochs below what is done": (["--epochs", "5"],
                                    "--epochs: expected at least the 20 epochs already trained"),
    "--lr changed": (["--lr", "0.5"], "--lr 0.5 (the run has 0.001)"),
    "--hidden changed": (["--hidden", "8"], "--hidden 8 (the run has 4)"),
    "--loss changed": (["--loss", "hinge"], "--loss hinge"),
    "--optimizer changed": (["--optimizer", "sgd"], "--optimizer sgd (the run has adam)"),
    "--no-standardize added": (["--no-standardize"], "--no-standardize"),
    "--out with --resume": (["--out", "elsewhere"], "--out"),
}


@pytest.mark.parametrize("case", sorted(RESUME))
def test_cli_resume_that_does_not_match_the_run_changes_nothing(case, finished_run, capsys):
    flags, expected = RESUME[case]
    files = {p: p.read_bytes() for p in finished_run.rglob("*") if p.is_file()}
    code, err = _train(capsys, "--resume", str(finished_run), "--quiet", *flags)
    _assert_one_line_error(code, err, expected)
    assert {p: p.read_bytes() for p in finished_run.rglob("*") if p.is_file()} == files


def test_cli_both_fractions_zero_trains_on_every_row(tmp_path, capsys):
    import json

    code = main(["train", "--dataset", "xor", "--hidden", "4", "--epochs", "2", "--test-fraction", "0",
                 "--validation-fraction", "0", "--no-plots", "--json", "--out", str(tmp_path / "run")])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    summary = json.loads(captured.out.strip().splitlines()[-1])
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert "train_accuracy" in summary and not any(k.startswith(("test_", "validation_")) for k in summary)
    assert set(metrics) & {"train", "validation", "test"} == {"train"}
    assert sum(metrics["train"]["support"]) == len(nnjax.data.load_dataset("xor").x)  # every row trained


def test_api_schedule_objects_pass_the_learning_rate_rule():
    # a schedule is checked by its own parameters, not as a number
    tx = optim.make("sgd", optax.constant_schedule(0.1))
    assert hasattr(tx, "update")
