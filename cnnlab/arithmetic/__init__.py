"""Shape arithmetic for convolutional networks: sizes, padding, parameters, receptive fields.

The lectures' formulas, computed exactly as Keras computes them, so a design done on paper
agrees with ``model.summary()``.  One module per job:

- ``sizes``: output size of a convolution ``W' = (W - K + 2P) / S + 1`` (floored, as Keras
  does) with the effective kernel ``(K - 1) * D + 1`` of a dilated kernel; the padding that
  keeps the size, ``P = (K - 1) / 2``, and the asymmetric padding of ``padding="same"``;
  pooling and transposed convolution sizes;
- ``params``: parameter counts ``K * K * C_in * C_out + C_out`` (standard, depthwise,
  pointwise, separable) and ``in_features * units + units`` for a dense layer;
- ``receptive_field``: ``LayerSpec`` (a layer designed on paper) and the receptive fields,
  jumps and start offsets of a stack of layers;
- ``keras_adapter``: the same for a built Keras model, through ``cnnlab.graph``;
- ``trace``: ``trace_shapes``, a paper design of a network checked layer by layer.

This package is pure Python: importing it imports neither Keras, TensorFlow nor NumPy.  Only
``receptive_field(model)`` and ``trace_shapes(model)`` touch Keras: given a model, they import
``cnnlab.graph``, the one walker over Keras layer graphs (shared with ``cnnlab.counters``).

Used in: labs/02_conv_arithmetic, labs/03_pooling_strides_invariance, labs/04_mlp_to_convnet,
labs/05_architectures_and_cost
"""

from cnnlab.arithmetic.keras_adapter import receptive_field_rows
from cnnlab.arithmetic.params import conv_params, dense_params
from cnnlab.arithmetic.receptive_fields import LayerSpec, ReceptiveField, receptive_field
from cnnlab.arithmetic.sizes import (
    conv_output_size,
    conv_transpose_output_size,
    padding_to_keep_size,
    pool_output_size,
    same_padding,
)
from cnnlab.arithmetic.trace import ShapeTrace, trace_shapes

__all__ = [
    "LayerSpec",
    "ReceptiveField",
    "ShapeTrace",
    "conv_output_size",
    "conv_params",
    "conv_transpose_output_size",
    "dense_params",
    "padding_to_keep_size",
    "pool_output_size",
    "receptive_field",
    "receptive_field_rows",
    "same_padding",
    "trace_shapes",
]
