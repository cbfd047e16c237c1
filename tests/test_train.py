"""cnnlab.train: curves, gradient norms, quiet fits, seeds and kernel-only L2.

References are independent of the code under test: finite differences of a NumPy forward pass
(or of the model's forward pass alone) for gradients, NumPy sums for L2 penalties, Keras's own
History objects for curves, and the same model under JAX in a subprocess.
"""

import ast
import io
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import cnnlab  # noqa: F401 - quiets TensorFlow; must come before keras
import keras
import matplotlib.figure
import numpy as np
import pytest
from keras import layers
from sklearn.datasets import load_digits

from cnnlab import train


@pytest.fixture(scope="module")
def digits():
    """The first 96 real 8x8 digits (scikit-learn), scaled to [0, 1], with their labels."""
    data = load_digits()
    x = (data.images[:96, ..., None] / 16.0).astype("float32")
    return x, data.target[:96].astype("int64")


def _tiny_convnet(seed=0):
    keras.utils.set_random_seed(seed)
    model = keras.Sequential([
        keras.Input((8, 8, 1)),
        layers.Conv2D(4, 3, activation="relu", name="conv"),
        layers.Flatten(),
        layers.Dense(10, activation="softmax", name="dense"),
    ])
    model.compile("sgd", "sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


# --------------------------------------------------------------------------- compare_histories


def _lines(ax):
    return {line.get_label(): line for line in ax.get_lines()}


def test_compare_histories_draws_train_solid_validation_dashed_one_colour_per_run():
    runs = {
        "base": {"loss": [2.0, 1.5, 1.2], "val_loss": [2.1, 1.8, 1.7],
                 "accuracy": [0.3, 0.5, 0.6], "val_accuracy": [0.3, 0.4, 0.45]},
        "+BN": {"loss": [1.8, 1.1, 0.8], "val_loss": [1.9, 1.3, 1.1],
                "accuracy": [0.4, 0.6, 0.7], "val_accuracy": [0.35, 0.5, 0.6]},
    }
    fig = train.compare_histories(runs, title="ablation")
    assert isinstance(fig, matplotlib.figure.Figure)
    assert [ax.get_title() for ax in fig.axes] == ["loss", "accuracy"]
    assert fig._suptitle.get_text() == "ablation"
    for ax, metric in zip(fig.axes, ("loss", "accuracy")):
        assert ax.get_xlabel() == "epoch" and ax.get_ylabel() == metric
        lines = _lines(ax)
        for name, history in runs.items():
            tr, va = lines[f"{name} (train)"], lines[f"{name} (validation)"]
            assert tr.get_linestyle() == "-" and va.get_linestyle() == "--"
            assert tr.get_color() == va.get_color()
            np.testing.assert_array_equal(tr.get_xdata(), [1, 2, 3])
            np.testing.assert_array_equal(tr.get_ydata(), history[metric])
            np.testing.assert_array_equal(va.get_ydata(), history["val_" + metric])
        assert lines["base (train)"].get_color() != lines["+BN (train)"].get_color()
    legend = [t.get_text() for t in fig.axes[-1].get_legend().get_texts()]
    assert legend == ["base (train)", "base (validation)", "+BN (train)", "+BN (validation)"]


@pytest.mark.slow
def test_compare_histories_reads_keras_history_objects_and_their_initial_epoch(digits):
    x, y = digits
    model = _tiny_convnet()
    first = model.fit(x, y, epochs=2, batch_size=32, validation_split=0.25, verbose=0)
    second = model.fit(x, y, epochs=4, initial_epoch=2, batch_size=32, validation_split=0.25,
                       verbose=0)
    fig = train.compare_histories({"phase 1": first, "phase 2": second}, metrics="accuracy")
    (ax,) = fig.axes
    lines = _lines(ax)
    np.testing.assert_array_equal(lines["phase 1 (train)"].get_xdata(), [1, 2])
    np.testing.assert_array_equal(lines["phase 2 (validation)"].get_xdata(), [3, 4])
    np.testing.assert_allclose(lines["phase 2 (train)"].get_ydata(), second.history["accuracy"])


def test_compare_histories_marks_the_phase_boundary_with_a_labelled_dashed_line():
    merged = {"loss": [2.0, 1.6, 1.4, 1.0, 0.8], "val_loss": [2.1, 1.8, 1.7, 1.3, 1.2],
              "phase_boundary": 3}
    fig = train.compare_histories({"transfer": merged}, metrics=("loss",))
    lines = _lines(fig.axes[0])
    boundary = lines["fine-tuning starts"]
    # between the last frozen epoch (3) and the first fine-tuning epoch (4)
    np.testing.assert_array_equal(boundary.get_xdata(), [3.5, 3.5])
    assert boundary.get_linestyle() == "--"
    np.testing.assert_array_equal(lines["transfer (train)"].get_xdata(), [1, 2, 3, 4, 5])
    plain = train.compare_histories({"no phases": {"loss": [1.0, 0.5]}}, metrics=("loss",))
    assert "fine-tuning starts" not in _lines(plain.axes[0])


def test_compare_histories_missing_metric_names_the_run_and_the_keys_it_has():
    expected = r"'base' has no 'accuracy'; it has \['loss', 'val_loss'\]"
    with pytest.raises(ValueError, match=expected):
        train.compare_histories({"base": {"loss": [1.0], "val_loss": [1.2]}})


@pytest.mark.parametrize("histories, error, match", [
    ({}, ValueError, "empty"),
    (keras.callbacks.History(), TypeError, "compare_histories\\({'base': history}\\)"),
    ({"run": [1.0, 2.0]}, TypeError, "History that fit\\(\\) returns"),
    ({"run": {"loss": [1.0, 0.5], "phase_boundary": 5}}, ValueError, "first phase"),
    ({"run": {"loss": [1.0, 0.5], "val_loss": [1.0]}}, ValueError, "validation_freq=1"),
])
def test_compare_histories_bad_input_gets_an_error_with_the_fix(histories, error, match):
    with pytest.raises(error, match=match):
        train.compare_histories(histories, metrics=("loss",))


def test_compare_histories_asks_for_training_metric_names():
    with pytest.raises(ValueError, match="give the training name 'loss'"):
        train.compare_histories({"run": {"loss": [1.0]}}, metrics=("val_loss",))


# --------------------------------------------------------------------------- gradient_norms


def _numpy_dense_loss(weights, x, y):
    """Mean sparse cross-entropy of Dense(tanh) -> Dense(softmax), in NumPy float64."""
    k1, b1, k2, b2 = weights
    logits = np.tanh(x @ k1 + b1) @ k2 + b2
    logits = logits - logits.max(axis=1, keepdims=True)
    log_p = logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))
    return -np.mean(log_p[np.arange(len(y)), y])


def _finite_difference_norm(f, weights, index, eps=1e-6):
    """L2 norm of the central-difference gradient of ``f`` with respect to ``weights[index]``."""
    grad = np.zeros_like(weights[index])
    for pos in np.ndindex(grad.shape):
        plus = [w.copy() for w in weights]
        minus = [w.copy() for w in weights]
        plus[index][pos] += eps
        minus[index][pos] -= eps
        grad[pos] = (f(plus) - f(minus)) / (2 * eps)
    return np.linalg.norm(grad)


@pytest.fixture
def float64():
    """Keras floatx float64 for one test (the compiled loss is cast to floatx: a float32 loss
    plus float64 L2 terms cannot be summed), restored afterwards."""
    before = keras.config.floatx()
    keras.config.set_floatx("float64")
    yield
    keras.config.set_floatx(before)


def test_gradient_norms_match_finite_differences_on_a_dense_net_in_float64(digits, float64):
    x, y = digits
    x = x[:24].reshape(24, 64).astype("float64")
    y = y[:24]
    keras.utils.set_random_seed(1)
    inputs = keras.Input((64,), dtype="float64")
    hidden = layers.Dense(5, activation="tanh", dtype="float64", name="hidden")(inputs)
    outputs = layers.Dense(10, activation="softmax", dtype="float64", name="out")(hidden)
    model = keras.Model(inputs, outputs)
    model.compile("sgd", "sparse_categorical_crossentropy")
    rng = np.random.default_rng(0)
    model.set_weights([w + 0.1 * rng.standard_normal(w.shape) for w in model.get_weights()])
    factor = 0.05
    train.l2_on_kernels_only(model, factor)
    weights = model.get_weights()  # [hidden kernel, hidden bias, out kernel, out bias]

    def regularized(ws):
        return _numpy_dense_loss(ws, x, y) + factor * (np.sum(ws[0] ** 2) + np.sum(ws[2] ** 2))

    def data_only(ws):
        return _numpy_dense_loss(ws, x, y)

    compiled = train.gradient_norms(model, x, y, include_bias=True)  # fit's loss: CE + L2
    assert list(compiled) == ["hidden/kernel", "hidden/bias", "out/kernel", "out/bias"]
    np.testing.assert_allclose(compiled.loss, regularized(weights), rtol=1e-6)
    given = train.gradient_norms(model, x, y, loss="sparse_categorical_crossentropy")
    assert list(given) == ["hidden/kernel", "out/kernel"]
    for path, index in (("hidden/kernel", 0), ("hidden/bias", 1), ("out/kernel", 2)):
        np.testing.assert_allclose(
            compiled[path], _finite_difference_norm(regularized, weights, index), rtol=1e-5)
        if path in given:
            np.testing.assert_allclose(
                given[path], _finite_difference_norm(data_only, weights, index), rtol=1e-5)
    assert given["out/kernel"] != pytest.approx(compiled["out/kernel"], rel=1e-3)


@pytest.mark.slow
def test_gradient_norms_match_finite_differences_on_a_conv_net_with_batchnorm(digits):
    x, y = digits
    x, y = x[:16].astype("float64"), y[:16]
    keras.utils.set_random_seed(2)
    inputs = keras.Input((8, 8, 1), dtype="float64")
    h = layers.Conv2D(3, 3, activation="tanh", dtype="float64", name="conv")(inputs)
    h = layers.BatchNormalization(dtype="float64", name="bn")(h)
    h = layers.GlobalAveragePooling2D(dtype="float64")(h)
    outputs = layers.Dense(10, activation="softmax", dtype="float64", name="out")(h)
    model = keras.Model(inputs, outputs)
    model.compile("sgd", "sparse_categorical_crossentropy")
    variables = model.trainable_variables
    start = [np.array(v.numpy()) for v in variables]
    moving = [np.array(v.numpy()) for v in model.non_trainable_variables]

    def forward_loss(ws):
        """Cross-entropy of the model's own forward pass (training mode), no autodiff."""
        for v, w in zip(variables, ws):
            v.assign(w)
        p = np.asarray(model(x, training=True))
        return -np.mean(np.log(p[np.arange(len(y)), y]))

    norms = train.gradient_norms(model, x, y)
    # measuring does not move the model: BatchNorm's moving statistics are untouched
    for v, before in zip(model.non_trainable_variables, moving):
        np.testing.assert_array_equal(v.numpy(), before)
    assert list(norms) == ["conv/kernel", "out/kernel"]
    expected = {path: _finite_difference_norm(forward_loss, start, i)
                for i, path in enumerate(v.path for v in variables) if path in norms}
    for path, value in expected.items():
        np.testing.assert_allclose(norms[path], value, rtol=1e-5)


_JAX_SCRIPT = textwrap.dedent("""
    import json, sys
    import cnnlab  # noqa: F401
    import keras
    import numpy as np
    from cnnlab import train

    model = keras.saving.load_model(sys.argv[1], compile=False)
    model.compile("sgd", "sparse_categorical_crossentropy")
    data = np.load(sys.argv[2])
    norms = train.gradient_norms(model, data["x"], data["y"], include_bias=True)
    plain = train.gradient_norms(model, data["x"], data["y"],
                                 loss="sparse_categorical_crossentropy")
    print(json.dumps({"backend": keras.backend.backend(), "norms": dict(norms),
                      "loss": norms.loss, "plain": dict(plain), "n_losses": len(model.losses)}))
""")


@pytest.mark.jax
def test_gradient_norms_are_the_same_under_jax_as_under_tensorflow(digits, tmp_path):
    x, y = digits
    x, y = x[:16], y[:16]
    keras.utils.set_random_seed(3)
    model = keras.Sequential([
        keras.Input((8, 8, 1)),
        layers.Conv2D(4, 3, activation="relu"),
        layers.BatchNormalization(),
        layers.SeparableConv2D(4, 3, activation="relu"),
        layers.Flatten(),
        layers.Dense(10, activation="softmax"),
    ])
    model.compile("sgd", "sparse_categorical_crossentropy")
    train.l2_on_kernels_only(model, 0.01)
    model.save(tmp_path / "model.keras")
    np.savez(tmp_path / "batch.npz", x=x, y=y)
    norms = train.gradient_norms(model, x, y, include_bias=True)
    plain = train.gradient_norms(model, x, y, loss="sparse_categorical_crossentropy")

    env = dict(os.environ, KERAS_BACKEND="jax", JAX_PLATFORMS="cpu")
    done = subprocess.run(
        [sys.executable, "-c", _JAX_SCRIPT, str(tmp_path / "model.keras"),
         str(tmp_path / "batch.npz")],
        capture_output=True, text=True, env=env, timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["backend"] == "jax"
    assert result["n_losses"] == 4  # conv, depthwise, pointwise and dense kernels
    assert list(result["norms"]) == list(norms)
    np.testing.assert_allclose(result["loss"], norms.loss, rtol=1e-5)
    np.testing.assert_allclose(list(result["norms"].values()), list(norms.values()), rtol=1e-4)
    np.testing.assert_allclose(list(result["plain"].values()), list(plain.values()), rtol=1e-4)


def test_gradient_norms_report_has_a_table_and_plots_one_point_per_kernel(digits):
    x, y = digits
    model = _tiny_convnet()
    norms = train.gradient_norms(model, x[:16], y[:16])
    table = norms.table
    assert list(table.columns) == ["layer", "weight", "shape", "norm"]
    assert list(table["layer"]) == ["conv", "dense"]
    assert list(table["shape"]) == [(3, 3, 1, 4), (144, 10)]
    np.testing.assert_allclose(table["norm"], list(norms.values()))
    assert "conv" in repr(norms) and "<table" in norms._repr_html_()
    fig = norms.plot()
    (ax,) = fig.axes
    (line,) = ax.get_lines()
    np.testing.assert_allclose(line.get_ydata(), list(norms.values()))
    assert ax.get_yscale() == "log" and ax.get_title() and ax.get_ylabel()
    shared = matplotlib.figure.Figure()
    shared_ax = shared.subplots()
    assert norms.plot(ax=shared_ax, label="plain") is shared
    assert norms.plot(ax=shared_ax, label="again") is shared
    assert len(shared_ax.get_lines()) == 2


def test_gradient_norms_without_a_loss_asks_for_one(digits):
    x, y = digits
    model = keras.Sequential([keras.Input((8, 8, 1)), layers.Flatten(),
                              layers.Dense(10, name="dense")])
    with pytest.raises(ValueError, match="compile"):
        train.gradient_norms(model, x[:8], y[:8])
    loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    assert train.gradient_norms(model, x[:8], y[:8], loss=loss)["dense/kernel"] > 0


# --------------------------------------------------------------------------- quiet fits


@pytest.mark.slow
def test_fit_quietly_prints_exactly_one_line_per_epoch(digits, capsys):
    x, y = digits
    model = _tiny_convnet()
    capsys.readouterr()
    history = train.fit_quietly(model, x, y, epochs=3, batch_size=32, validation_split=0.25)
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 3
    for epoch, line in enumerate(lines, start=1):
        assert line.startswith(f"epoch {epoch}/3")
        assert " s  loss " in line and "val_accuracy" in line
    assert history.epoch == [0, 1, 2]
    logged = float(lines[-1].split("  loss ")[1].split()[0])
    assert logged == pytest.approx(history.history["loss"][-1], abs=1e-4)


@pytest.mark.slow
def test_fit_quietly_keeps_the_callers_callbacks_and_refuses_verbose(digits, capsys):
    x, y = digits
    model = _tiny_convnet()
    seen = []
    callback = keras.callbacks.LambdaCallback(on_epoch_end=lambda epoch, logs: seen.append(epoch))
    train.fit_quietly(model, x, y, epochs=2, batch_size=48, callbacks=[callback])
    assert seen == [0, 1]
    assert len(capsys.readouterr().out.splitlines()) == 2
    with pytest.raises(TypeError, match="drop verbose="):
        train.fit_quietly(model, x, y, epochs=1, verbose=1)


@pytest.mark.slow
def test_epoch_progress_bar_stays_on_one_line(digits):
    x, y = digits
    model = _tiny_convnet()
    out = io.StringIO()
    train.fit_quietly(model, x, y, epochs=3, batch_size=48, progress=True, file=out)
    text = out.getvalue()
    assert text.count("\n") <= 1  # tqdm redraws with carriage returns
    assert "3/3" in text and "loss=" in text


# --------------------------------------------------------------------------- set_seed


def _weights_after_one_epoch(seed, digits):
    x, y = digits
    assert train.set_seed(seed) == seed
    model = keras.Sequential([keras.Input((8, 8, 1)), layers.Flatten(),
                              layers.Dropout(0.3), layers.Dense(10, activation="softmax")])
    model.compile("sgd", "sparse_categorical_crossentropy")
    model.fit(x, y, epochs=1, batch_size=16, shuffle=True, verbose=0)
    return model.get_weights()


@pytest.mark.slow
def test_set_seed_makes_two_fits_end_with_identical_weights(digits):
    first = _weights_after_one_epoch(7, digits)
    again = _weights_after_one_epoch(7, digits)
    other = _weights_after_one_epoch(8, digits)
    for a, b in zip(first, again):
        np.testing.assert_array_equal(a, b)
    assert not np.allclose(first[0], other[0])


@pytest.mark.parametrize("seed, error", [(1.5, TypeError), ("42", TypeError), (True, TypeError),
                                         (-1, ValueError)])
def test_set_seed_rejects_what_is_not_a_non_negative_int(seed, error):
    with pytest.raises(error, match="set_seed\\(42\\)"):
        train.set_seed(seed)


# --------------------------------------------------------------------------- set_deterministic

# Lab 09's digit ResNet (its own cell, read from the solution notebook) trained for two seeded
# epochs on 256 real digits, in a fresh process whose TensorFlow was told to use THREADS cores.
_DETERMINISM_SCRIPT = textwrap.dedent("""
    import hashlib, os, sys
    import cnnlab
    import nbformat, numpy as np, keras
    from keras import layers
    from sklearn.datasets import load_digits
    from cnnlab.train import set_deterministic, set_seed

    if sys.argv[1] == "pin":
        set_deterministic(threads=1)
    nb = nbformat.read(sys.argv[2], as_version=4)
    source = next(c.source for c in nb.cells if "def digit_resnet(" in c.source)
    start = source.index("def digit_resnet(")
    end = source.index("\\n\\n\\n", start)
    exec(source[start:end], globals())
    data = load_digits()
    x = np.kron(data.images[:256], np.ones((1, 4, 4)))[:, 2:30, 2:30, None] * 16.0
    y = data.target[:256] % 5
    set_seed(0)
    model = digit_resnet()
    model.compile(keras.optimizers.Adam(3e-3), "sparse_categorical_crossentropy")
    model.fit(x.astype("float32"), y, batch_size=64, epochs=2, shuffle=True, verbose=0)
    weights = b"".join(w.tobytes() for w in model.get_weights())
    print("weights", hashlib.sha256(weights).hexdigest())
""")


def _digit_resnet_fingerprints(kit_root, mode):
    """The weights' hash after the same seeded fit on 1 and on 2 intra-op threads."""
    solution = kit_root / "solutions" / "09_transfer_learning.ipynb"
    processes = []
    for threads in (1, 2):
        env = {**os.environ, "TF_NUM_INTRAOP_THREADS": str(threads),
               "OMP_NUM_THREADS": str(threads), "KERAS_BACKEND": "tensorflow"}
        processes.append(subprocess.Popen(
            [sys.executable, "-c", _DETERMINISM_SCRIPT, mode, str(solution)], env=env,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    fingerprints = []
    for process in processes:
        out, err = process.communicate(timeout=300)
        assert process.returncode == 0, err[-2000:]
        fingerprints.append(out.split("weights ")[-1].strip())
    return fingerprints


@pytest.mark.slow
@pytest.mark.skipif(keras.backend.backend() != "tensorflow", reason="TensorFlow's thread pools")
def test_set_deterministic_gives_lab09s_resnet_the_same_weights_on_one_core_or_two(kit_root):
    one_core, two_cores = _digit_resnet_fingerprints(kit_root, "pin")
    assert one_core == two_cores


@pytest.mark.slow
@pytest.mark.skipif(keras.backend.backend() != "tensorflow", reason="TensorFlow's thread pools")
def test_set_deterministic_after_the_first_tensorflow_op_names_the_fix():
    script = textwrap.dedent("""
        import cnnlab, keras
        from cnnlab.train import set_deterministic
        keras.ops.convert_to_numpy(keras.ops.ones(2) + 1)   # TensorFlow's pools start here
        try:
            set_deterministic(threads=1 if sys.argv[1] == "0" else 2)
        except RuntimeError as exc:
            print("RuntimeError:", exc)
    """)
    env = {**os.environ, "TF_NUM_INTRAOP_THREADS": "0", "KERAS_BACKEND": "tensorflow"}
    out = subprocess.run([sys.executable, "-c", "import sys\n" + script, "0"], env=env,
                         capture_output=True, text=True, timeout=120)
    assert "RuntimeError:" in out.stdout, out.stderr[-2000:]
    assert "restart the kernel and call set_deterministic()" in out.stdout


@pytest.mark.parametrize("threads", [0, -1, 1.5, True, "1"])
def test_set_deterministic_rejects_what_is_not_a_thread_count(threads):
    with pytest.raises(ValueError, match="set_deterministic\\(threads=1\\)"):
        train.set_deterministic(threads)


def test_set_deterministic_leaves_another_backends_threads_alone(monkeypatch):
    from cnnlab import devices
    from cnnlab.train import determinism

    calls = []
    monkeypatch.setattr(determinism, "_pin_tensorflow_threads", calls.append)
    monkeypatch.setattr(devices, "keras_backend", lambda: "jax")
    assert train.set_deterministic(3) is None and calls == []
    monkeypatch.setattr(devices, "keras_backend", lambda: "tensorflow")
    train.set_deterministic(np.int64(3))
    assert calls == [3] and type(calls[0]) is int


def test_gradient_norms_on_a_backend_without_gradients_names_the_ones_to_set(digits,
                                                                             monkeypatch):
    from cnnlab import devices

    x, y = digits
    model = _tiny_convnet()
    monkeypatch.setattr(devices, "keras_backend", lambda: "numpy")
    with pytest.raises(ValueError, match="gradient_norms \\(automatic differentiation\\) is "
                                         "not available on the 'numpy' backend; set "
                                         "KERAS_BACKEND to jax or tensorflow or torch"):
        train.gradient_norms(model, x[:8], y[:8])


# --------------------------------------------------------------------------- l2_on_kernels_only


def _every_kind_of_kernel():
    keras.utils.set_random_seed(4)
    inputs = keras.Input((8, 8, 1))
    h = layers.Conv2D(4, 3, padding="same", name="conv")(inputs)
    h = layers.BatchNormalization(name="bn")(h)
    h = layers.SeparableConv2D(4, 3, name="separable")(h)
    h = layers.DepthwiseConv2D(3, name="depthwise")(h)
    h = layers.Conv2DTranspose(2, 2, strides=2, name="transpose")(h)
    h = layers.GlobalAveragePooling2D()(h)
    outputs = layers.Dense(3, name="dense")(h)
    model = keras.Model(inputs, outputs)
    rng = np.random.default_rng(0)  # biases and BN weights nonzero: a term on them would show
    model.set_weights([w + rng.uniform(0.5, 1.0, w.shape) for w in model.get_weights()])
    return model


_KERNELS = ["conv/kernel", "separable/depthwise_kernel", "separable/pointwise_kernel",
            "depthwise/kernel", "transpose/kernel", "dense/kernel"]


def test_l2_on_kernels_only_adds_one_term_per_kernel_and_none_for_biases_or_batchnorm():
    model = _every_kind_of_kernel()
    assert model.losses == []
    factor = 1e-3
    assert train.l2_on_kernels_only(model, factor) is model
    regularized = [v.path for v in model.weights if v.regularizer is not None]
    assert regularized == _KERNELS
    assert len(model.losses) == len(_KERNELS)
    by_hand = factor * sum(np.sum(np.square(v.numpy())) for v in model.weights
                           if v.path in _KERNELS)
    total = float(sum(keras.ops.convert_to_numpy(term) for term in model.losses))
    np.testing.assert_allclose(total, by_hand, rtol=1e-6)
    everything = factor * sum(np.sum(np.square(w)) for w in model.get_weights())
    assert total < 0.9 * everything  # biases, gamma, beta (all >= 0.5 here) are not in it


@pytest.mark.slow
def test_l2_penalty_reaches_evaluate_of_a_model_compiled_and_run_before(digits):
    x, _ = digits
    x = x[:32]
    target = np.random.default_rng(1).standard_normal((32, 3)).astype("float32")
    model = _every_kind_of_kernel()
    model.compile("sgd", "mse")
    mse = model.evaluate(x, target, batch_size=32, verbose=0)  # traces the test step
    factor = 0.01
    train.l2_on_kernels_only(model, factor)
    penalty = factor * sum(np.sum(np.square(v.numpy())) for v in model.weights
                           if v.path in _KERNELS)
    np.testing.assert_allclose(model.evaluate(x, target, batch_size=32, verbose=0),
                               mse + penalty, rtol=1e-5)
    train.l2_on_kernels_only(model, 0)  # factor 0 takes the penalty off again
    assert model.losses == []
    np.testing.assert_allclose(model.evaluate(x, target, batch_size=32, verbose=0), mse,
                               rtol=1e-5)


def test_l2_on_kernels_only_reaches_unbuilt_layers_clones_and_nested_models():
    unbuilt = keras.Sequential([layers.Conv2D(2, 3), layers.Flatten(), layers.Dense(2)])
    train.l2_on_kernels_only(unbuilt, 0.1)
    unbuilt.build((None, 6, 6, 1))
    assert len(unbuilt.losses) == 2
    clone = keras.models.clone_model(unbuilt)
    assert len(clone.losses) == 2
    inputs = keras.Input((4,))
    inner = keras.Sequential([keras.Input((4,)), layers.Dense(3), layers.BatchNormalization()])
    outer = keras.Model(inputs, layers.Dense(1)(inner(inputs)))
    train.l2_on_kernels_only(outer, 0.1)
    assert len(outer.losses) == 2
    inner.trainable = False  # a frozen base (transfer learning) adds nothing while frozen
    assert len(outer.losses) == 1


@pytest.mark.parametrize("model, factor, error, match", [
    (lambda: keras.Sequential([layers.Dense(2)]), -0.1, ValueError, ">= 0"),
    (lambda: keras.Sequential([layers.Dense(2)]), "5e-4", TypeError, "number such as 5e-4"),
    (lambda: keras.Sequential([layers.Flatten()]), 0.1, ValueError, "no Conv/Dense kernels"),
    (lambda: np.zeros(3), 0.1, TypeError, "keras Model"),
])
def test_l2_on_kernels_only_bad_input_gets_an_error_with_the_fix(model, factor, error, match):
    with pytest.raises(error, match=match):
        train.l2_on_kernels_only(model(), factor)


# --------------------------------------------------------------------------- renamed arguments


class _RecordingModel:
    """Stands in for a keras.Model: fit() returns what it was called with."""

    def fit(self, *args, **kwargs):
        return args, kwargs


def test_old_argument_names_of_the_progress_bar_warn_and_still_work():
    with pytest.warns(DeprecationWarning, match="bar= is now called progress=") as record:
        callback = train.EpochProgress(bar=True)
    assert callback.progress is True and record[0].filename == __file__
    with pytest.warns(DeprecationWarning, match="bar= is now called progress="):
        _, kwargs = train.fit_quietly(_RecordingModel(), bar=True)
    (added,) = kwargs["callbacks"]
    assert added.progress is True and kwargs["verbose"] == 0
    _, kwargs = train.fit_quietly(_RecordingModel(), progress=False)
    assert kwargs["callbacks"][0].progress is False


def test_old_argument_name_factor_of_l2_on_kernels_only_warns_and_still_works():
    model = keras.Sequential([keras.Input((3,)), layers.Dense(2)])
    with pytest.warns(DeprecationWarning, match="factor= is now called l2="):
        train.l2_on_kernels_only(model, factor=0.5)
    kernel = model.layers[0].kernel.numpy()
    np.testing.assert_allclose(float(sum(model.losses)), 0.5 * np.sum(kernel ** 2), rtol=1e-5)
    with pytest.raises(TypeError, match="both factor= and l2="):
        train.l2_on_kernels_only(model, factor=0.5, l2=0.5)


def test_old_argument_name_include_biases_of_gradient_norms_warns_and_still_works():
    model = keras.Sequential([keras.Input((3,)), layers.Dense(2)])
    model.compile(loss="mse")
    x, y = np.ones((4, 3), "float32"), np.zeros((4, 2), "float32")
    expected = train.gradient_norms(model, x, y, include_bias=True)
    with pytest.warns(DeprecationWarning, match="include_biases= is now called include_bias="):
        norms = train.gradient_norms(model, x, y, include_biases=True)
    assert list(norms) == list(expected) and len(norms) == 2
    assert list(norms.values()) == pytest.approx(list(expected.values()))


def test_every_public_function_says_which_lab_uses_it():
    labs = {"compare_histories": ["06", "07", "09"], "fit_quietly": ["06", "07", "09"],
            "set_seed": ["06", "07", "09"], "set_deterministic": ["09"], "gradient_norms": ["07"],
            "l2_on_kernels_only": ["07"]}
    for name, numbers in labs.items():
        doc = getattr(train, name).__doc__
        used = doc.split("Used in:")[1]
        assert [part.strip()[5:7] for part in used.split(",")] == numbers, name


# --------------------------------------------------------------------------- weight_scale_sweep


def _sweep_net(batch_norm):
    inputs = keras.Input((8, 8, 1))
    h = inputs
    for _ in range(3):
        h = layers.Conv2D(4, 3, padding="same", use_bias=not batch_norm)(h)
        if batch_norm:
            h = layers.BatchNormalization()(h)
        h = layers.Activation("relu")(h)
    outputs = layers.Dense(10, activation="softmax")(layers.GlobalAveragePooling2D()(h))
    model = keras.Model(inputs, outputs)
    model.compile(optimizer=keras.optimizers.Adam(1e-2), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    return model


def _fresh_run(model_weights, batch_norm, scale, x, y, epochs, seed=0):
    # the independent reference: a new model, new optimizer, the same initial dense weights and
    # the same NumPy draws for the conv kernels, trained once
    model = _sweep_net(batch_norm)
    model.set_weights(model_weights)
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        if isinstance(layer, layers.Conv2D):
            layer.kernel.assign(rng.normal(0.0, scale, layer.kernel.shape).astype("float32"))
            if layer.bias is not None:
                layer.bias.assign(np.zeros(layer.bias.shape, "float32"))
    return model.fit(x, y, epochs=epochs, batch_size=16, shuffle=False, verbose=0).history["loss"]


@pytest.mark.slow
@pytest.mark.parametrize("batch_norm", [False, True])
def test_weight_scale_sweep_resets_everything_between_scales(digits, batch_norm):
    # every row of the sweep equals a fresh model trained from the same draws: nothing (weights,
    # BatchNorm statistics, Adam's moments, the step count) leaks from one scale to the next,
    # and the learning rate survives the reset
    x, y = digits
    x, y = x[:64], y[:64]
    train.set_seed(0)
    model = _sweep_net(batch_norm)
    initial = model.get_weights()
    table = train.weight_scale_sweep(model, [0.5, 0.05], x, y, epochs=2, batch_size=16,
                                     progress=False)
    assert list(table.columns) == ["epoch 1", "epoch 2", "accuracy"]
    assert float(keras.ops.convert_to_numpy(model.optimizer.learning_rate)) == pytest.approx(1e-2)
    for scale in (0.5, 0.05):
        expected = _fresh_run(initial, batch_norm, scale, x, y, epochs=2)
        np.testing.assert_allclose(table.loc[scale, ["epoch 1", "epoch 2"]], expected,
                                   rtol=1e-4)


def test_weight_scale_sweep_draws_kernels_at_the_asked_scale_and_fresh_batchnorm():
    model = _sweep_net(batch_norm=True)
    bn = [layer for layer in model.layers if isinstance(layer, layers.BatchNormalization)][0]
    bn.moving_mean.assign(np.full(bn.moving_mean.shape, 5.0, "float32"))
    from cnnlab.train.initialization import _reset_for_scale

    _reset_for_scale(model, 3.0, np.random.default_rng(0))
    kernels = np.concatenate([keras.ops.convert_to_numpy(layer.kernel).ravel()
                              for layer in model.layers if isinstance(layer, layers.Conv2D)])
    assert kernels.std() == pytest.approx(3.0, rel=0.15)
    assert not keras.ops.convert_to_numpy(bn.moving_mean).any()


def test_weight_scale_sweep_wants_a_compiled_model_and_positive_scales():
    model = _sweep_net(batch_norm=False)
    with pytest.raises(ValueError, match="scales must be positive"):
        train.weight_scale_sweep(model, [0.1, -1.0], np.zeros((1, 8, 8, 1)), [0])
    with pytest.raises(ValueError, match="repeat"):
        train.weight_scale_sweep(model, [0.1, 0.1], np.zeros((1, 8, 8, 1)), [0])
    uncompiled = keras.Sequential([keras.Input((8, 8, 1)), layers.Conv2D(1, 3)])
    with pytest.raises(ValueError, match="compile"):
        train.weight_scale_sweep(uncompiled, [0.1], np.zeros((1, 8, 8, 1)), [0])


# --------------------------------------------------------------------------- one backend switch

_BACKEND_CALLS = ("keras.backend.backend", "backend.backend", "keras.config.backend",
                  "keras_backend", "devices.keras_backend")


def _backend_comparisons(source):
    """``(line, code)`` of each comparison in ``source`` of the Keras backend (a call such as
    ``keras.backend.backend()``, or a name assigned from one) to a backend name."""
    from cnnlab.devices import BACKENDS

    tree = ast.parse(source)

    def is_backend_call(node):
        return (isinstance(node, ast.Call) and not node.args
                and ast.unparse(node.func) in _BACKEND_CALLS)

    names = {target.id for node in ast.walk(tree)
             if isinstance(node, ast.Assign) and is_backend_call(node.value)
             for target in node.targets if isinstance(target, ast.Name)}

    def is_backend(node):
        return is_backend_call(node) or (isinstance(node, ast.Name) and node.id in names)

    def names_a_backend(node):
        values = node.elts if isinstance(node, (ast.Tuple, ast.List, ast.Set)) else [node]
        return any(isinstance(value, ast.Constant) and value.value in BACKENDS
                   for value in values)

    return [(node.lineno, ast.unparse(node)) for node in ast.walk(tree)
            if isinstance(node, ast.Compare)
            and any(is_backend(side) for side in (node.left, *node.comparators))
            and any(names_a_backend(side) for side in (node.left, *node.comparators))]


def test_the_backend_comparison_finder_sees_each_way_of_writing_the_switch():
    source = textwrap.dedent("""
        import keras
        if keras.backend.backend() == "jax": pass
        backend = keras.backend.backend()
        if backend not in ("tensorflow", "torch"): pass
        if "torch" == devices.keras_backend(): pass
        if backend == "float32" or mode == "jax": pass
    """)
    assert [line for line, _ in _backend_comparisons(source)] == [3, 5, 6]


def test_only_devices_compares_the_keras_backend_to_a_backend_name_one_backend_switch():
    # cnnlab.devices.for_backend is the one backend switch; every other module hands it one
    # function per backend instead of its own if/elif chain on keras.backend.backend()
    package = Path(cnnlab.__file__).parent
    found = {str(path.relative_to(package.parent)): hits
             for path in sorted(package.rglob("*.py")) if path != package / "devices.py"
             for hits in [_backend_comparisons(path.read_text(encoding="utf-8"))] if hits}
    assert found == {}, "give cnnlab.devices.for_backend one function per backend instead"


def test_the_train_package_re_exports_every_name_from_the_module_that_defines_it():
    # issue 18: cnnlab.train was one 682-line module; it is a package with one module per job
    import importlib

    homes = {"EpochProgress": "progress", "GradientNorms": "gradients",
             "compare_histories": "histories", "fit_quietly": "progress",
             "gradient_norms": "gradients", "l2_on_kernels_only": "regularization",
             "set_deterministic": "determinism", "set_seed": "determinism",
             "weight_scale_sweep": "initialization"}
    assert sorted(train.__all__) == sorted(homes)
    for name, home in homes.items():
        module = importlib.import_module(f"cnnlab.train.{home}")
        assert getattr(train, name) is getattr(module, name)
        assert name in module.__all__
        assert getattr(module, name).__module__ == module.__name__
