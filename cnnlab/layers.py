"""Small custom layers that the historical architectures need and Keras does not ship.

LeNet-5 (LeCun, Bottou, Bengio & Haffner 1998, "Gradient-based learning applied to
document recognition") has three pieces that are not plain Keras layers:

* ``scaled_tanh``: the squashing function f(a) = 1.7159 tanh(2/3 a) (paper, appendix A);
* ``Subsampling2D``: the S2/S4 layers -- the 2x2 inputs are *summed*, multiplied by one
  trainable coefficient and shifted by one trainable bias per map (2 parameters per map);
* ``PartiallyConnectedConv2D``: the C3 layer, where each output map only sees some of the
  input maps (Table I of the paper, ``LENET5_C3_TABLE``), which cuts C3 to 1,516 parameters;
* ``EuclideanRBF``: the output layer of Euclidean radial basis function units.

ResNet on CIFAR (He et al. 2016, section 4.2) uses parameter-free "option A" shortcuts:
``ZeroPadShortcut`` subsamples the input and pads the new channels with zeros.

cnnlab only reports what it knows (``cnnlab.graph``): a layer that is not a built-in Keras
layer must describe itself, or ``cnnlab.summary`` shows "unknown" and
``cnnlab.arithmetic.receptive_field`` raises.  Each layer here declares, as any custom layer
may:

* ``receptive_field_step()``: the paper-design layer (a ``cnnlab.arithmetic.LayerSpec``) with
  the same geometry -- S2/S4 move a receptive field as a 2x2/2 pooling does, C3 as a 5x5
  convolution -- which gives LeNet-5's fields 5, 6, 14, 16, 32;
* ``count_macs(input_shape, output_shape)``: the products of its weights with its inputs for
  one image (shapes with the batch axis), bias excluded, as for Keras' own layers;
* ``compute_output_shape(input_shape)``: Keras' shape rule, so the shapes are known without
  running the layer.

Every layer is registered with ``keras.saving.register_keras_serializable(package="cnnlab")``
so a model that uses it can be saved to ``.keras`` and loaded back.  The code only uses
``keras.ops`` (backend-agnostic) and assumes channels-last images ``(batch, H, W, C)``.
"""

import math

import numpy as np
import keras
from keras import layers, ops

from cnnlab._checks import pair as _pair
from cnnlab.arithmetic import LayerSpec

__all__ = [
    "LENET5_C3_TABLE",
    "EuclideanRBF",
    "PartiallyConnectedConv2D",
    "Subsampling2D",
    "ZeroPadShortcut",
    "scaled_tanh",
]

# Table I of LeCun et al. 1998: for each of the 16 C3 maps, the S2 maps (0-5) it sees.
# Maps 0-5 take 3 contiguous inputs, 6-11 take 4 contiguous inputs, 12-14 take 4
# non-contiguous inputs and map 15 takes all 6 (indices wrap around: 4, 5, 0 are contiguous).
LENET5_C3_TABLE = (
    (0, 1, 2), (1, 2, 3), (2, 3, 4), (3, 4, 5), (0, 4, 5), (0, 1, 5),
    (0, 1, 2, 3), (1, 2, 3, 4), (2, 3, 4, 5), (0, 3, 4, 5), (0, 1, 4, 5), (0, 1, 2, 5),
    (0, 1, 3, 4), (1, 2, 4, 5), (0, 2, 3, 5),
    (0, 1, 2, 3, 4, 5),
)


@keras.saving.register_keras_serializable(package="cnnlab")
def scaled_tanh(x):
    """LeCun's squashing function f(a) = 1.7159 tanh(2a/3), with f(1) = 1 and f(-1) = -1.

    The constants make the function's gain close to 1 around the +-1 targets and put the
    maximum of its second derivative at a = +-1 (LeCun et al. 1998, appendix A).  Pass it as
    ``activation=scaled_tanh`` to any Keras layer.

    Used in: no lab notebook directly; ``build_lenet5`` uses it
    """
    return 1.7159 * ops.tanh((2.0 / 3.0) * x)


@keras.saving.register_keras_serializable(package="cnnlab")
class Subsampling2D(layers.Layer):
    """LeNet-5's trainable subsampling (S2, S4): sum-pool, times a coefficient, plus a bias.

    For each map c, ``y = activation(coefficient[c] * sum(2x2 window) + bias[c])``: 2
    trainable parameters per map (S2: 6 maps -> 12, S4: 16 maps -> 32).  The coefficient
    starts at 1 / (pool area), so at initialisation the layer is an average pooling followed
    by the activation.  Modern networks replaced it by parameter-free max pooling.

    Args:
        pool_size: window size, int or pair (Keras ``AveragePooling2D`` meaning).
        strides: step between windows; defaults to ``pool_size`` (non-overlapping).
        activation: applied after the affine map; LeNet-5 uses ``scaled_tanh``.

    Used in: labs/04_mlp_to_convnet
    """

    def __init__(self, pool_size=2, strides=None, activation=None, **kwargs):
        super().__init__(**kwargs)
        self.pool_size = _pair(pool_size, "pool_size")
        self.strides = self.pool_size if strides is None else _pair(strides, "strides")
        self.activation = keras.activations.get(activation)

    def build(self, input_shape):
        channels = input_shape[-1]
        area = self.pool_size[0] * self.pool_size[1]
        self.coefficient = self.add_weight(
            name="coefficient", shape=(channels,),
            initializer=keras.initializers.Constant(1.0 / area))
        self.bias = self.add_weight(name="bias", shape=(channels,), initializer="zeros")

    def call(self, inputs):
        area = self.pool_size[0] * self.pool_size[1]
        window_sum = ops.average_pool(inputs, self.pool_size, self.strides, padding="valid") * area
        return self.activation(window_sum * self.coefficient + self.bias)

    def receptive_field_step(self):
        """Geometry for receptive fields: a ``pool_size`` window every ``strides`` pixels.

        The window sum sees what an average pooling of the same size sees (LeNet-5 S2 takes
        C1's 5x5 field to 6x6, S4 takes C3's 14x14 to 16x16).  Read by
        ``cnnlab.arithmetic.receptive_field`` and ``cnnlab.summary``.
        """
        return LayerSpec(kind="avg_pool", kernel_size=self.pool_size, strides=self.strides)

    def count_macs(self, input_shape, output_shape):
        """MACs per image for ``cnnlab.summary``: one multiply per output value.

        Each output is ``coefficient[c] * (window sum)``: a single product with a weight.
        The ``pool area - 1`` additions that form the window sum are not counted (they
        multiply no weight, like the additions of average pooling), nor is the bias.
        LeNet-5 S2: 14 x 14 x 6 = 1,176; S4: 5 x 5 x 16 = 400.

        Used in: labs/05_architectures_and_cost
        """
        return math.prod(output_shape[1:])

    def compute_output_shape(self, input_shape):
        batch, height, width, channels = input_shape
        sizes = []
        for size, pool, step in zip((height, width), self.pool_size, self.strides):
            sizes.append(None if size is None else (size - pool) // step + 1)
        return (batch, sizes[0], sizes[1], channels)

    def get_config(self):
        config = super().get_config()
        config.update({
            "pool_size": self.pool_size,
            "strides": self.strides,
            "activation": keras.activations.serialize(self.activation),
        })
        return config


@keras.saving.register_keras_serializable(package="cnnlab")
class PartiallyConnectedConv2D(layers.Layer):
    """A convolution where output map j only sees the input maps ``connection_table[j]``.

    This is LeNet-5's C3 layer (``connection_table=LENET5_C3_TABLE``): breaking the symmetry
    between maps and cutting the weights.  Only the connected kernels are stored, in a
    variable of shape ``(kh, kw, number of connections)``, so ``count_params()`` counts
    exactly the connected weights plus one bias per output map (C3: 60 connections x 25 + 16
    = 1,516).  At call time they are scattered into a full ``(kh, kw, in, out)`` kernel whose
    other entries are constant zeros, then a normal convolution runs.

    Args:
        filters: number of output maps; must equal ``len(connection_table)``.
        kernel_size: int or pair.
        connection_table: for each output map, the sequence of input-map indices it sees.
        strides, padding: as in ``keras.layers.Conv2D``.
        activation: applied after adding the bias; LeNet-5 uses ``scaled_tanh``.
        kernel_initializer: drawn for the *full* kernel shape (so the fan-in is that of a
            full convolution), then only the connected entries are kept.

    Used in: labs/04_mlp_to_convnet
    """

    def __init__(self, filters, kernel_size, connection_table, strides=1, padding="valid",
                 activation=None, kernel_initializer="glorot_uniform",
                 bias_initializer="zeros", **kwargs):
        super().__init__(**kwargs)
        table = tuple(tuple(int(i) for i in inputs) for inputs in connection_table)
        if len(table) != filters:
            raise ValueError(
                f"connection_table has {len(table)} rows but filters={filters}; give one "
                f"row (the input maps it sees) per output map")
        if any(len(row) == 0 or len(set(row)) != len(row) for row in table):
            raise ValueError(
                f"connection_table={table!r} has an empty row or a repeated input map; each "
                f"output map must see at least one distinct input map")
        if padding not in ("valid", "same"):
            raise ValueError(f"padding must be 'valid' or 'same', got {padding!r}")
        self.filters = int(filters)
        self.kernel_size = _pair(kernel_size, "kernel_size")
        self.strides = _pair(strides, "strides")
        self.padding = padding
        self.connection_table = table
        self.activation = keras.activations.get(activation)
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.bias_initializer = keras.initializers.get(bias_initializer)

    @property
    def num_connections(self):
        """Number of (input map, output map) pairs that are connected."""
        return sum(len(row) for row in self.connection_table)

    def connection_mask(self, input_channels):
        """Boolean array ``(input_channels, filters)``: True where input i feeds output j."""
        mask = np.zeros((input_channels, self.filters), dtype=bool)
        for output_map, inputs in enumerate(self.connection_table):
            mask[list(inputs), output_map] = True
        return mask

    def build(self, input_shape):
        channels = input_shape[-1]
        used = max(max(row) for row in self.connection_table)
        if min(min(row) for row in self.connection_table) < 0 or used >= channels:
            raise ValueError(
                f"connection_table refers to input map {used} but the input has {channels} "
                f"maps (indices 0..{channels - 1}); fix the table or the previous layer")
        kh, kw = self.kernel_size
        # Position of each connection in the full kernel flattened to (kh, kw, in * out).
        positions = [i * self.filters + j
                     for j, inputs in enumerate(self.connection_table) for i in inputs]
        # For each full-kernel slot, which stored weight goes there (the last one is a zero).
        gather = np.full(channels * self.filters, self.num_connections, dtype="int32")
        gather[positions] = np.arange(self.num_connections, dtype="int32")
        self._positions = np.asarray(positions, dtype="int32")
        self._gather = gather
        self._input_channels = channels

        def connected_initializer(shape, dtype=None):
            full = self.kernel_initializer((kh, kw, channels, self.filters), dtype=dtype)
            full = ops.reshape(full, (kh, kw, channels * self.filters))
            return ops.take(full, self._positions, axis=-1)

        self.kernel = self.add_weight(name="kernel", shape=(kh, kw, self.num_connections),
                                      initializer=connected_initializer)
        self.bias = self.add_weight(name="bias", shape=(self.filters,),
                                    initializer=self.bias_initializer)

    def full_kernel(self):
        """The ``(kh, kw, in, out)`` kernel with zeros where maps are not connected."""
        kh, kw = self.kernel_size
        kernel = ops.convert_to_tensor(self.kernel)
        padded = ops.concatenate([kernel, ops.zeros_like(kernel[..., :1])], axis=-1)
        full = ops.take(padded, self._gather, axis=-1)
        return ops.reshape(full, (kh, kw, self._input_channels, self.filters))

    def call(self, inputs):
        outputs = ops.conv(inputs, self.full_kernel(), strides=self.strides,
                           padding=self.padding)
        return self.activation(outputs + self.bias)

    def receptive_field_step(self):
        """Geometry for receptive fields: that of a full convolution of the same kernel.

        Leaving some input maps out does not change where a unit looks in the image (LeNet-5
        C3: 5x5 on S2, a 14x14 field).  Read by ``cnnlab.arithmetic.receptive_field`` and
        ``cnnlab.summary``.
        """
        return LayerSpec(kind="conv", kernel_size=self.kernel_size, strides=self.strides,
                         padding=self.padding)

    def count_macs(self, input_shape, output_shape):
        """MACs per image for ``cnnlab.summary``: only the connected weights multiply.

        Every output position multiplies ``kh x kw`` weights for each of the
        ``num_connections`` (input map, output map) pairs; the zeros of the unconnected
        pairs in ``full_kernel()`` are not counted (a dedicated implementation skips them),
        nor is the bias.  LeNet-5 C3: 10 x 10 positions x 60 connections x 25 = 150,000
        (a full 6 -> 16 convolution would take 240,000).

        Used in: labs/05_architectures_and_cost
        """
        positions = math.prod(output_shape[1:-1])
        return positions * self.num_connections * math.prod(self.kernel_size)

    def compute_output_shape(self, input_shape):
        batch, height, width, _ = input_shape
        sizes = []
        for size, kernel, step in zip((height, width), self.kernel_size, self.strides):
            if size is None:
                sizes.append(None)
            elif self.padding == "same":
                sizes.append(-(-size // step))
            else:
                sizes.append((size - kernel) // step + 1)
        return (batch, sizes[0], sizes[1], self.filters)

    def get_config(self):
        config = super().get_config()
        config.update({
            "filters": self.filters,
            "kernel_size": self.kernel_size,
            "connection_table": [list(row) for row in self.connection_table],
            "strides": self.strides,
            "padding": self.padding,
            "activation": keras.activations.serialize(self.activation),
            "kernel_initializer": keras.initializers.serialize(self.kernel_initializer),
            "bias_initializer": keras.initializers.serialize(self.bias_initializer),
        })
        return config


@keras.saving.register_keras_serializable(package="cnnlab")
class EuclideanRBF(layers.Layer):
    """LeNet-5's output layer: one Euclidean radial basis function unit per class.

    Unit i outputs the penalty ``y_i = sum_j (x_j - w_ij)^2`` (paper, eq. 7): the squared
    distance between the F6 vector and the class prototype ``w_i``.  The paper drew the
    prototypes by hand as +-1 bitmaps of the characters and kept them fixed (at least
    initially); here they are random +-1 vectors (``seed``), fixed unless
    ``trainable_centers=True``.  With ``return_penalties=False`` (default) the layer returns
    ``softmax(-y)``, so the usual cross-entropy loss is the paper's discriminative criterion
    (eq. 9) without its constant "rubbish class" term.

    Used in: no lab notebook directly; ``build_lenet5(output="rbf")`` uses it
    """

    def __init__(self, units, seed=None, trainable_centers=False, return_penalties=False,
                 **kwargs):
        super().__init__(**kwargs)
        if not isinstance(units, (int, np.integer)) or units < 1:
            raise ValueError(f"units must be a positive int (one RBF unit per class), "
                             f"got {units!r}")
        self.units = int(units)
        self.seed = seed
        self.trainable_centers = bool(trainable_centers)
        self.return_penalties = bool(return_penalties)

    def build(self, input_shape):
        features = input_shape[-1]
        rng = np.random.default_rng(self.seed)

        def plus_minus_one(shape, dtype=None):
            return ops.convert_to_tensor(rng.choice([-1.0, 1.0], size=shape), dtype=dtype)

        self.centers = self.add_weight(name="centers", shape=(features, self.units),
                                       initializer=plus_minus_one,
                                       trainable=self.trainable_centers)

    def call(self, inputs):
        # ||x - w||^2 = ||x||^2 - 2 x.w + ||w||^2, for all units at once.
        penalties = (ops.sum(inputs * inputs, axis=-1, keepdims=True)
                     - 2.0 * ops.matmul(inputs, self.centers)
                     + ops.sum(self.centers * self.centers, axis=0))
        if self.return_penalties:
            return penalties
        return ops.softmax(-penalties, axis=-1)

    def receptive_field_step(self):
        """Geometry for receptive fields: a dense layer on the last axis (pixel by pixel).

        Read by ``cnnlab.arithmetic.receptive_field`` and ``cnnlab.summary``.
        """
        return LayerSpec(kind="dense")

    def count_macs(self, input_shape, output_shape):
        """MACs per image for ``cnnlab.summary``: ``units x features`` per input vector.

        Each unit compares every feature with its prototype, ``(x_j - w_ij)^2``: one
        weight-product per (unit, feature) pair, the same count as a Dense layer of
        ``units`` (LeNet-5: 10 x 84 = 840).  The squaring and the softmax are not counted.

        Used in: labs/05_architectures_and_cost
        """
        vectors = math.prod(input_shape[1:-1])
        return vectors * input_shape[-1] * self.units

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[:-1]) + (self.units,)

    def get_config(self):
        config = super().get_config()
        config.update({
            "units": self.units,
            "seed": self.seed,
            "trainable_centers": self.trainable_centers,
            "return_penalties": self.return_penalties,
        })
        return config


@keras.saving.register_keras_serializable(package="cnnlab")
class ZeroPadShortcut(layers.Layer):
    """ResNet "option A" shortcut: subsample by ``strides`` and pad new channels with zeros.

    He et al. (2016, section 3.3 and 4.2) use it on CIFAR when a block halves the map size
    and doubles the channels: the shortcut stays parameter-free.  Output channels are the
    input channels followed by ``filters - input channels`` maps of zeros.

    Used in: no lab notebook directly; ``build_resnet_cifar(shortcut="A")`` uses it
    """

    def __init__(self, filters, strides=2, **kwargs):
        super().__init__(**kwargs)
        self.filters = int(filters)
        self.strides = _pair(strides, "strides")

    def build(self, input_shape):
        if input_shape[-1] > self.filters:
            raise ValueError(f"ZeroPadShortcut can only add channels: input has "
                             f"{input_shape[-1]} channels but filters={self.filters}")

    def call(self, inputs):
        sh, sw = self.strides
        outputs = inputs[:, ::sh, ::sw, :]
        extra = self.filters - inputs.shape[-1]
        if extra:
            outputs = ops.pad(outputs, [[0, 0], [0, 0], [0, 0], [0, extra]])
        return outputs

    def receptive_field_step(self):
        """Geometry for receptive fields: output (i, j) is input (i * sh, j * sw), a 1x1
        window every ``strides`` pixels.  Read by ``cnnlab.arithmetic.receptive_field`` and
        ``cnnlab.summary``.
        """
        return LayerSpec(kind="conv", kernel_size=1, strides=self.strides)

    def count_macs(self, input_shape, output_shape):
        """MACs per image for ``cnnlab.summary``: 0 (copying and zero padding use no weights).
        """
        return 0

    def compute_output_shape(self, input_shape):
        batch, height, width, _ = input_shape
        height = None if height is None else -(-height // self.strides[0])
        width = None if width is None else -(-width // self.strides[1])
        return (batch, height, width, self.filters)

    def get_config(self):
        config = super().get_config()
        config.update({"filters": self.filters, "strides": self.strides})
        return config
