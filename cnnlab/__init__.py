"""cnnlab: a Keras 3 lab kit for teaching convolutional neural networks.

The package is imported at the top of every lab notebook.  Submodules load lazily, so
``import cnnlab`` stays fast and pure-Python parts (``cnnlab.arithmetic``) never import
TensorFlow.  Importing cnnlab first also quiets TensorFlow's start-up lines (see
``cnnlab._quiet``) without turning oneDNN off.
"""

import importlib
import os

# TensorFlow's C++ logging: 0 = all, 1 = no INFO, 2 = no INFO/WARNING.  Keep errors.
# oneDNN stays on (TF_ENABLE_ONEDNN_OPTS untouched): turning it off makes training ~3x slower.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from cnnlab import _quiet  # noqa: E402

_quiet.install()

__version__ = "0.1.0"

_SUBMODULES = {
    "arithmetic", "augment", "counters", "datasets", "detach", "exercise", "exercises", "figures",
    "graph", "interpret", "kernels", "layers", "lecture_vgg16", "model_report", "models",
    "notebooks", "ops",
    "pretrained", "profiles", "segmentation", "selfcheck", "sequences", "train", "transfer",
    "viz", "devices",
}
# The grader is the instructor's: the students' release (`cnnlab release`) has no cnnlab/grading.
if os.path.isdir(os.path.join(os.path.dirname(__file__), "grading")):
    _SUBMODULES.add("grading")
_FUNCTIONS = {
    "answer_label": "selfcheck",
    "check": "selfcheck",
    "checkpoint": "selfcheck",
    "profile": "profiles",
    "by_profile": "profiles",
    "summary": "counters",
}

__all__ = sorted(_FUNCTIONS) + sorted(_SUBMODULES)


def __getattr__(name):
    if name in _FUNCTIONS:
        module = importlib.import_module(f"cnnlab.{_FUNCTIONS[name]}")
        return getattr(module, name)
    if name in _SUBMODULES:
        return importlib.import_module(f"cnnlab.{name}")
    raise AttributeError(f"module 'cnnlab' has no attribute {name!r}")


def __dir__():
    return __all__ + ["__version__"]
