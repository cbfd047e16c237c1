"""cnnlab runs on the JAX backend with TensorFlow absent, as on the GPU machines.

The GPU machines have JAX (and PyTorch) but no TensorFlow.  A subprocess blocks every import of
``tensorflow`` before Keras loads, selects ``KERAS_BACKEND=jax`` and then imports every cnnlab
module and runs a piece of each part the GPU labs use: augmentation, counters, the pretrained
model, transfer learning (one training step with the backbone unfrozen, BatchNorm statistics
unchanged), interpretation and the device report.
"""

import json
import subprocess
import sys

import pytest
from tests.conftest import ROOT

pytestmark = pytest.mark.jax  # a JAX subprocess: `make test-jax` runs it, `make test` does not

SCRIPT = r'''
import importlib, importlib.abc, json, os, pkgutil, sys

class NoTensorFlow(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name == "tensorflow" or name.startswith("tensorflow."):
            raise ImportError(f"TensorFlow is not installed on the GPU machines ({name})")

sys.meta_path.insert(0, NoTensorFlow())
os.environ["KERAS_BACKEND"] = "jax"
import cnnlab
import keras
import numpy as np

report = {"backend": keras.backend.backend(), "failed_imports": {}}
for module in pkgutil.walk_packages(cnnlab.__path__, prefix="cnnlab."):
    try:
        importlib.import_module(module.name)
    except Exception as exc:  # the report names every module that needs TensorFlow
        report["failed_imports"][module.name] = f"{type(exc).__name__}: {exc}"

from cnnlab import counters, interpret, models, transfer
from cnnlab.augment import ImageDataGenerator

x = np.random.default_rng(0).uniform(0, 255, (8, 32, 32, 3)).astype("float32")
batch, labels = next(ImageDataGenerator(rotation_range=20, horizontal_flip=True)
                     .flow(x, np.arange(8), batch_size=4, seed=0))
report["flow_batch"] = list(batch.shape)
report["lenet_macs"] = counters.count_macs(models.build_lenet5())

backbone = transfer.load_backbone("efficientnet_lite0", input_shape=(32, 32, 3))
model = transfer.build_transfer_model(backbone, 3)
transfer.unfreeze(model, fraction=0.2)
model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
norm = next(l for l in backbone.layers if isinstance(l, keras.layers.BatchNormalization))
before = np.array(norm.moving_mean)
model.fit(x, np.arange(8) % 3, epochs=1, batch_size=8, verbose=0)
report["bn_moving_mean_change"] = float(np.abs(np.array(norm.moving_mean) - before).max())

small = keras.Sequential([keras.Input((8, 8, 1)), keras.layers.Conv2D(2, 3, activation="relu"),
                          keras.layers.GlobalAveragePooling2D(), keras.layers.Dense(2)])
saliency = interpret.saliency_map(small, np.ones((8, 8, 1), "float32"), 0)
report["saliency_shape"] = list(np.shape(saliency))
report["device"] = str(transfer.device_report()).splitlines()[0]
report["tensorflow_loaded"] = "tensorflow" in sys.modules
print("REPORT " + json.dumps(report))
'''


@pytest.fixture(scope="module")
def report():
    pytest.importorskip("jax")
    result = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True,
                            cwd=ROOT, timeout=900)
    lines = [line for line in result.stdout.splitlines() if line.startswith("REPORT ")]
    assert result.returncode == 0 and lines, result.stderr[-3000:]
    return json.loads(lines[-1][len("REPORT "):])


def test_every_cnnlab_module_imports_without_tensorflow(report):
    assert report["backend"] == "jax"
    assert report["failed_imports"] == {}
    assert report["tensorflow_loaded"] is False


def test_augmentation_counters_and_interpretation_run_on_jax_alone(report):
    assert report["flow_batch"] == [4, 32, 32, 3]
    assert report["lenet_macs"] == 328_096
    assert report["saliency_shape"] == [8, 8]
    assert report["device"] == "Keras backend: jax"


def test_fine_tuning_on_jax_keeps_batchnorm_statistics(report):
    assert report["bn_moving_mean_change"] == 0.0
