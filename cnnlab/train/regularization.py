"""Weight decay on kernels only: ``l2_on_kernels_only``.

The Fix deck's ablation: "only the weights of the convolution and linear layers are
regularized (not the bias, nor the coefficients of the Batch Norm)".  Lab 07
(labs/07_training_convnets_well) adds its regularization step with it.

Used in: no lab notebook directly; the labs import these names from cnnlab.train
"""

from __future__ import annotations

import math

import keras
import numpy as np
from keras import layers

from cnnlab._checks import renamed as _renamed
from cnnlab.graph import nested_layers

__all__ = ["l2_on_kernels_only"]


# layer type -> (regularizer attribute, weight name) pairs that hold its kernels
_KERNEL_SLOTS = (
    ((layers.SeparableConv1D, layers.SeparableConv2D),
     (("depthwise_regularizer", "depthwise_kernel"),
      ("pointwise_regularizer", "pointwise_kernel"))),
    ((layers.DepthwiseConv1D, layers.DepthwiseConv2D),
     (("depthwise_regularizer", "kernel"),)),
    ((layers.Conv1D, layers.Conv2D, layers.Conv3D,
      layers.Conv1DTranspose, layers.Conv2DTranspose, layers.Conv3DTranspose,
      layers.Dense, layers.EinsumDense),
     (("kernel_regularizer", "kernel"),)),
)


def _kernel_slots(layer):
    for types, slots in _KERNEL_SLOTS:
        if isinstance(layer, types):
            return slots
    return ()


@_renamed(factor="l2")
def l2_on_kernels_only(model, l2):
    """Put an L2 penalty ``l2 * sum(kernel**2)`` on every conv/dense kernel; return the model.

    Kernels of Conv1D/2D/3D (and Transpose), Dense, EinsumDense, DepthwiseConv (its depthwise
    kernel) and SeparableConv (depthwise and pointwise kernels) get ``keras.regularizers.L2``
    (replacing any kernel regularizer they had; ``l2=0`` removes them; ``l2`` is the argument
    of ``keras.regularizers.L2`` and of ``cnnlab.models.build_factorized_convnet``).  Biases and
    BatchNorm's gamma/beta are left alone, as in the Fix deck's ablation ("only the weights of
    the convolution and linear layers are regularized (not the bias, nor the coefficients of the
    Batch Norm)"): a bias only shifts a unit and gamma/beta only set the scale and offset of
    normalized activations, so pulling them to zero does not limit how sharply the function
    varies with its input the way shrinking weights does; it only biases units towards zero
    output (and decaying gamma fights the normalization).

    Works on built models: in Keras 3 a weight's penalty is ``variable.regularizer``, which
    ``add_weight`` copies from ``layer.kernel_regularizer`` only when the layer is built, so
    setting the layer attribute afterwards adds no loss.  This sets both (the attribute keeps the
    penalty in ``get_config``, ``clone_model`` and saved files), and drops the model's traced
    train/test steps, as ``compile`` does, so the next ``fit``/``evaluate`` sees the penalty.
    ``model.losses`` then holds one term per trainable kernel (frozen kernels count only
    while trainable).  The model is changed in place.

    Used in: labs/07_training_convnets_well
    """
    if not isinstance(model, keras.layers.Layer):
        raise TypeError(f"model must be a keras Model or Layer, got {type(model).__name__}")
    if isinstance(l2, bool) or not isinstance(l2, (int, float, np.number)):
        raise TypeError(f"l2 must be a number such as 5e-4, got {l2!r}")
    if not (math.isfinite(l2) and l2 >= 0):
        raise ValueError(f"l2 must be a finite number >= 0 (e.g. 5e-4; 0 removes the "
                         f"penalty), got {l2!r}")
    # every tracked layer, as Layer.losses itself walks them (nested models, custom layers)
    found = 0
    for layer in nested_layers(model, include_self=True):
        for attribute, weight_name in _kernel_slots(layer):
            regularizer = keras.regularizers.L2(float(l2)) if l2 > 0 else None
            setattr(layer, attribute, regularizer)
            found += 1
            if layer.built:
                for v in layer.weights:
                    if v.name == weight_name:
                        v.regularizer = regularizer
    if not found:
        raise ValueError(f"{model.name!r} has no Conv/Dense kernels to regularize; "
                         "l2_on_kernels_only needs Conv*, Dense, DepthwiseConv* or SeparableConv*")
    for name in ("train_function", "test_function"):
        if getattr(model, name, None) is not None:
            setattr(model, name, None)
    return model
