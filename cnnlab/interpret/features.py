"""What a ConvNet's units respond to: kernels, feature maps and top-activating patches.

The ISPR decks' "visualize kernel weights: works only for early convolutional layers"
(:func:`plot_filters`), the feature maps each convolution outputs for one image
(:func:`feature_maps`, :func:`plot_feature_maps`), and Zeiler & Fergus's (2014) "top-9 image
patches" of a unit: over a set of images, the receptive-field crops where one channel of a
mid-level layer responds most (:func:`top_activating_patches`, :func:`plot_top_patches`, with
their NumPy steps :func:`top_k_activations`, :func:`field_window`, :func:`crop_window`).
Lab 10 (looking inside) draws them.
"""

from __future__ import annotations

import numbers

import keras
import matplotlib.pyplot as plt
import numpy as np
from keras import layers as klayers
from keras import ops
from tqdm.auto import tqdm

from cnnlab._checks import number_pair
from cnnlab.interpret.surgery import (
    _choose_layers,
    _fit_images,
    _output_shape,
    _position,
    _preprocessed,
    _tensor_of,
)

__all__ = [
    "crop_window",
    "feature_maps",
    "field_window",
    "plot_feature_maps",
    "plot_filters",
    "plot_top_patches",
    "top_activating_patches",
    "top_k_activations",
]

# --------------------------------------------------------------------------- feature maps


def feature_maps(model, image, layers=None, preprocess=None):
    """Activations of ``layers`` for ``image``: a dict layer name -> NumPy array.

    ``layers``: names or layer objects (top-level layers of ``model``); default every
    convolution layer (Conv2D, DepthwiseConv2D, SeparableConv2D, Conv2DTranspose), in model
    order.  One image ``(H, W, C)`` gives arrays without a batch axis ``(h, w, channels)``; a
    batch ``(N, H, W, C)`` keeps it.

    Used in: labs/10_looking_inside
    """
    batch, had_batch = _fit_images(model, image, batch=True)
    chosen = _choose_layers(model, layers)
    x = ops.convert_to_tensor(_preprocessed(preprocess)(batch))
    if isinstance(model, keras.Sequential):
        wanted = {id(layer) for layer in chosen}
        found = {}
        for layer in model.layers[: max(_position(model, c) for c in chosen) + 1]:
            x = layer(x, training=False)
            if id(layer) in wanted:
                found[layer.name] = x
        outputs = [found[layer.name] for layer in chosen]
    else:
        extractor = keras.Model(model.inputs[0],
                                [_tensor_of(model, layer, "output") for layer in chosen])
        outputs = extractor(x, training=False)
        if not isinstance(outputs, (list, tuple)):
            outputs = [outputs]  # one layer: Keras returns the tensor itself
    maps = {}
    for layer, out in zip(chosen, outputs):
        array = np.asarray(ops.convert_to_numpy(out))
        maps[layer.name] = array if had_batch else array[0]
    return maps


def plot_feature_maps(maps_or_model, image=None, layers=None, max_channels=16, cols=8,
                      preprocess=None):
    """Figure of the first ``max_channels`` channels of each layer's feature maps.

    ``maps_or_model``: a dict from :func:`feature_maps`, or a model (then ``image`` is needed
    and ``layers``/``preprocess`` are passed on).  One row block per layer, titled with its name
    and shape; each map is scaled to its own min..max (viridis: dark = low, yellow = high).

    Used in: labs/10_looking_inside
    """
    if isinstance(maps_or_model, dict):
        maps = maps_or_model
    else:
        if image is None:
            raise ValueError("pass the image whose feature maps to draw: plot_feature_maps("
                             "model, image)")
        maps = feature_maps(maps_or_model, image, layers=layers, preprocess=preprocess)
    if not maps:
        raise ValueError("no feature maps to draw")
    if max_channels < 1 or cols < 1:
        raise ValueError(f"max_channels and cols must be at least 1, got {max_channels}, {cols}")
    blocks = []
    for name, array in maps.items():
        array = np.asarray(array)
        if array.ndim == 4:
            array = array[0]  # a batch: draw its first image
        if array.ndim != 3:
            raise ValueError(f"feature maps of {name!r} have shape {array.shape}; expected "
                             "(height, width, channels) from a convolutional layer")
        blocks.append((name, array, min(array.shape[-1], max_channels)))
    ncols = min(cols, max(n for _, _, n in blocks))
    rows = [(-(-n // ncols)) for _, _, n in blocks]
    fig, axes = plt.subplots(sum(rows), ncols, figsize=(1.4 * ncols, 1.55 * sum(rows) + 0.6),
                             squeeze=False)
    row = 0
    for (name, array, n), nrows in zip(blocks, rows):
        for k in range(nrows * ncols):
            ax = axes[row + k // ncols][k % ncols]
            ax.set_xticks([])
            ax.set_yticks([])
            if k >= n:
                ax.axis("off")
                continue
            ax.imshow(array[..., k], cmap="viridis")
            label = f"ch {k}"
            if k == 0:
                h, w, c = array.shape
                label = f"{name} {h}x{w}x{c}\nch 0"
            ax.set_title(label, fontsize=7, loc="left")
        row += nrows
    fig.suptitle(f"Feature maps: first {max_channels} channels per layer "
                 "(each map scaled to its own min..max)", fontsize=9)
    fig.tight_layout()
    plt.close(fig)  # returned to the caller: pyplot must not show it a second time
    return fig


def _kernel_of(layer_or_kernel):
    if isinstance(layer_or_kernel, klayers.Layer):
        layer = layer_or_kernel
        if isinstance(layer, klayers.DepthwiseConv2D):
            kernel = np.asarray(ops.convert_to_numpy(layer.kernel))
            kh, kw, cin, mult = kernel.shape
            return kernel.reshape(kh, kw, 1, cin * mult), f"{layer.name} (depthwise)"
        if isinstance(layer, klayers.SeparableConv2D):
            kernel = np.asarray(ops.convert_to_numpy(layer.depthwise_kernel))
            kh, kw, cin, mult = kernel.shape
            return kernel.reshape(kh, kw, 1, cin * mult), f"{layer.name} (depthwise part)"
        kernel = getattr(layer, "kernel", None)
        if kernel is None:
            raise TypeError(f"layer {layer.name!r} has no kernel; pass a Conv2D layer or a "
                            "kernel array (kh, kw, in_channels, filters)")
        return np.asarray(ops.convert_to_numpy(kernel)), layer.name
    return np.asarray(layer_or_kernel, dtype=np.float32), "kernel"


def plot_filters(layer_or_kernel, max_filters=64, cols=8, input_channel=0):
    """Figure of a convolution's filters, one small image per filter.

    ``layer_or_kernel``: a Conv2D-like layer or a kernel array ``(kh, kw, in_channels,
    filters)``.  Three input channels: each filter drawn as an RGB colour patch; one input
    channel (or a depthwise kernel): grayscale; otherwise the slice ``input_channel`` of each
    filter in grayscale.  Each filter is scaled to 0..1 on its own: ``(w - min) / (max - min)``
    over all its values (jointly over R, G, B, so the colours keep their balance), so black is
    that filter's most negative weight and white its most positive.

    Used in: labs/10_looking_inside
    """
    kernel, name = _kernel_of(layer_or_kernel)
    if kernel.ndim != 4:
        raise ValueError(f"kernel shape {kernel.shape} is not (kh, kw, in_channels, filters): "
                         "pass a 2-D convolution layer or its kernel")
    if max_filters < 1 or cols < 1:
        raise ValueError(f"max_filters and cols must be at least 1, got {max_filters}, {cols}")
    kh, kw, cin, count = kernel.shape
    if cin == 3:
        mode, patches = "RGB", kernel
    elif cin == 1:
        mode, patches = "grayscale", kernel
    else:
        if not 0 <= input_channel < cin:
            raise ValueError(f"input_channel {input_channel} is outside 0..{cin - 1}")
        mode, patches = f"grayscale, input channel {input_channel} of {cin}", \
            kernel[:, :, input_channel:input_channel + 1]
    shown = min(count, max_filters)
    ncols = min(cols, shown)
    nrows = -(-shown // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(1.1 * ncols, 1.1 * nrows + 0.7),
                             squeeze=False)
    for k in range(nrows * ncols):
        ax = axes[k // ncols][k % ncols]
        ax.set_xticks([])
        ax.set_yticks([])
        if k >= shown:
            ax.axis("off")
            continue
        patch = patches[..., k]
        low, high = float(patch.min()), float(patch.max())
        scaled = (patch - low) / (high - low) if high > low else np.full_like(patch, 0.5)
        if scaled.shape[-1] == 3:
            ax.imshow(scaled, interpolation="nearest")
        else:
            ax.imshow(scaled[..., 0], cmap="gray", vmin=0, vmax=1, interpolation="nearest")
        ax.set_title(str(k), fontsize=7)
    fig.suptitle(f"{name}: {shown} of {count} filters {kh}x{kw} ({mode}); each filter scaled "
                 "to its own min (black) .. max (white)", fontsize=8)
    fig.tight_layout()
    plt.close(fig)
    return fig


# --------------------------------------------------------------------------- top-9 patches


def top_k_activations(activations, k=9, one_per_image=True):
    """Where one channel responds most over a set of images: Zeiler & Fergus's top-k units.

    ``activations``: ``(N, h, w)``, the channel's feature map for each of ``N`` images.  With
    ``one_per_image=True`` (Zeiler & Fergus: each patch from a different image) every image
    contributes its strongest position (the first in row-major order on a tie), then the
    ``k`` images with the largest of these are kept; with ``False``, the ``k`` largest over
    every ``(image, row, col)``.  Order: decreasing value, ties in ``(image, row, col)`` order.
    Returns ``{"images", "rows", "cols"}`` (int arrays) and ``"values"`` (float), each of
    length ``min(k, candidates)``.

    Used in: no lab notebook directly; ``top_activating_patches`` and the reference of
    exercise 10.top_patches
    """
    a = np.asarray(activations, dtype=np.float64)
    if a.ndim != 3 or 0 in a.shape:
        raise ValueError(f"activations must have shape (images, height, width), got {a.shape}; "
                         "for one channel c of feature maps (N, h, w, C) pass maps[..., c]")
    if not isinstance(k, numbers.Integral) or isinstance(k, bool) or k < 1:
        raise ValueError(f"k must be a positive integer, got {k!r}")
    count, height, width = a.shape
    flat = a.reshape(count, height * width)
    if one_per_image:
        best = flat.argmax(axis=1)
        values = flat[np.arange(count), best]
        images = np.argsort(-values, kind="stable")[:k]
        positions = best[images]
    else:
        order = np.argsort(-flat.ravel(), kind="stable")[:k]
        images, positions = np.divmod(order, height * width)
    rows, cols = np.divmod(positions, width)
    return {"images": images.astype(int), "rows": rows.astype(int), "cols": cols.astype(int),
            "values": a[images, rows, cols]}


def field_window(row, col, size, jump, start):
    """``(top, left, bottom, right)``: the input pixels that unit ``(row, col)`` of a layer sees.

    ``size``, ``jump`` and ``start`` are the layer's receptive field, jump and start (a number
    or a ``(rows, cols)`` pair, as ``cnnlab.arithmetic.receptive_field`` gives them): the
    unit's field is centred on pixel ``start + row * jump``, so it spans
    ``top = start + row * jump - (size - 1) / 2`` to ``bottom = top + size`` (exclusive).
    The window is not clipped: it may begin before pixel 0 or end past the image, in the
    zero padding.

    Used in: no lab notebook directly; ``top_activating_patches`` and the reference of
    exercise 10.top_patches
    """
    (size_r, size_c), (jump_r, jump_c), (start_r, start_c) = (
        number_pair(size, "size"), number_pair(jump, "jump"), number_pair(start, "start"))
    top = int(round(start_r + row * jump_r - (size_r - 1) / 2))
    left = int(round(start_c + col * jump_c - (size_c - 1) / 2))
    return top, left, top + int(size_r), left + int(size_c)


def crop_window(image, window, fill=0.0):
    """The pixels of ``image`` (``(H, W)`` or ``(H, W, C)``) inside ``window`` (``(top, left,
    bottom, right)``, :func:`field_window`), float32, the part outside the image set to ``fill``
    (the network's zero padding, in the input's units).

    Used in: no lab notebook directly; ``top_activating_patches`` and the reference of
    exercise 10.top_patches
    """
    image = np.asarray(image, dtype=np.float32)
    top, left, bottom, right = (int(v) for v in window)
    if bottom <= top or right <= left:
        raise ValueError(f"window {window} is empty: it must be (top, left, bottom, right) with "
                         "bottom > top and right > left")
    crop = np.full((bottom - top, right - left) + image.shape[2:], fill, dtype=np.float32)
    height, width = image.shape[:2]
    r0, r1, c0, c1 = max(top, 0), min(bottom, height), max(left, 0), min(right, width)
    if r0 < r1 and c0 < c1:
        crop[r0 - top:r1 - top, c0 - left:c1 - left] = image[r0:r1, c0:c1]
    return crop


def top_activating_patches(model, layer, images, channels, k=9, one_per_image=True,
                           inside=False, preprocess=None, batch_size=16, fill=0.0,
                           progress=True):
    """Zeiler & Fergus's "top-9 image patches": what a few units of a mid-level layer respond to.

    The ISPR Pisa deck (*Inspect Deconvolution Layers*: "Corresponding top-9 image patches"):
    for each channel of ``layer`` in ``channels``, the ``k`` units (one per image by default,
    :func:`top_k_activations`) with the largest activation over ``images`` (a batch ``(N, H, W,
    C)`` in the model's input units; ``preprocess`` is applied first, ``batch_size`` images at a
    time), and the crop of the input each of those units sees: its receptive field
    (:func:`cnnlab.arithmetic.receptive_field` of the model, :func:`field_window`), outside the
    image filled with ``fill`` (:func:`crop_window`).  ``inside=True`` keeps only the units whose
    whole field lies inside the image: a unit at the border also sees the zero padding, an
    edge that no photo has.

    Returns a dict: ``"layer"``, ``"field"`` (``{"size", "jump", "start"}`` of the layer, per
    axis), ``"activations"`` (``(N, h, w, len(channels))``, the chosen channels' maps, ``-inf``
    at the units ``inside=True`` leaves out), ``"one_per_image"``, ``"inside"`` and
    ``"channels"``: ``{channel: {"images", "rows", "cols", "values", "windows",
    "crops"}}``, ``crops`` of shape ``(k, size, size, C)`` in the input's units, strongest first.

    Used in: labs/10_looking_inside
    """
    from cnnlab.arithmetic import receptive_field

    batch, _ = _fit_images(model, images, name="images", batch=True)
    name = layer if isinstance(layer, str) else layer.name
    depth = _output_shape(model, _choose_layers(model, name)[0])[-1]
    channels = [int(c) for c in np.atleast_1d(channels)]
    bad = [c for c in channels if not 0 <= c < depth]
    if not channels or bad:
        raise ValueError(f"channels {bad or channels} are not channels of layer {name!r}, which "
                         f"has {depth}; pick indices in 0..{depth - 1}")
    if not isinstance(batch_size, numbers.Integral) or isinstance(batch_size, bool) \
            or batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
    field = receptive_field(model).row(name)
    if field["whole_input"]:
        raise ValueError(f"layer {name!r} sees the whole input (after Flatten or global "
                         "pooling): pick a convolutional layer before it")
    chunks = []
    starts = range(0, len(batch), batch_size)
    for begin in tqdm(starts, desc="activations", unit="batch", disable=not progress):
        maps = feature_maps(model, batch[begin:begin + batch_size], layers=name,
                            preprocess=preprocess)[name]
        chunks.append(maps[..., channels])
    maps = np.concatenate(chunks)
    if inside:
        height, width = batch.shape[1:3]
        windows = [[field_window(r, c, field["size"], field["jump"], field["start"])
                    for c in range(maps.shape[2])] for r in range(maps.shape[1])]
        keep = np.array([[w[0] >= 0 and w[1] >= 0 and w[2] <= height and w[3] <= width
                          for w in row] for row in windows])
        if not keep.any():
            raise ValueError(f"no unit of {name!r} has its whole field ({field['size']}) inside "
                             f"{height}x{width} images: use inside=False or larger images")
        maps = np.where(keep[None, :, :, None], maps, -np.inf)
    found = {}
    for index, channel in enumerate(channels):
        top = top_k_activations(maps[..., index], k=k, one_per_image=one_per_image)
        windows = [field_window(r, c, field["size"], field["jump"], field["start"])
                   for r, c in zip(top["rows"], top["cols"])]
        crops = np.stack([crop_window(batch[n], w, fill) for n, w in zip(top["images"], windows)])
        found[channel] = {**top, "windows": np.array(windows), "crops": crops}
    return {"layer": name, "field": {"size": tuple(field["size"]), "jump": tuple(field["jump"]),
                                     "start": tuple(field["start"])},
            "activations": maps, "one_per_image": bool(one_per_image), "inside": bool(inside),
            "channels": found}


def plot_top_patches(patches, cols=3, blocks_per_row=4, title=None):
    """Figure of :func:`top_activating_patches`: one ``cols``-wide grid of crops per channel.

    Each block is titled with its channel, each crop with its image index and activation
    (strongest top left, row by row).  Crops with values above 1 are drawn as 0..255 pixels;
    crops that are not RGB show their first channel in gray.

    Used in: labs/10_looking_inside
    """
    found = patches["channels"]
    if not found:
        raise ValueError("no channels to draw: pass the result of top_activating_patches")
    k = max(len(entry["values"]) for entry in found.values())
    rows = -(-k // cols)
    n_blocks = len(found)
    across = min(blocks_per_row, n_blocks)
    down = -(-n_blocks // across)
    fig = plt.figure(figsize=(2.9 * across, 3.2 * down + 0.5), layout="constrained")
    subfigs = np.atleast_1d(fig.subfigures(down, across, wspace=0.04, hspace=0.04)).ravel()
    size = patches["field"]["size"]
    for subfig, (channel, entry) in zip(subfigs, found.items()):
        axes = np.atleast_1d(subfig.subplots(rows, cols)).ravel()
        for n, ax in enumerate(axes):
            ax.set_xticks([])
            ax.set_yticks([])
            if n >= len(entry["values"]):
                ax.axis("off")
                continue
            crop = entry["crops"][n]
            if crop.ndim == 3 and crop.shape[-1] != 3:
                crop = crop[..., 0]  # not RGB: the first channel, in gray
            if crop.max() > 1.0:
                crop = np.clip(crop, 0, 255).astype(np.uint8)
            ax.imshow(crop, cmap="gray" if crop.ndim == 2 else None)
            ax.set_title(f"img {entry['images'][n]}: {entry['values'][n]:.2f}", fontsize=7)
        axes[(rows - 1) * cols].set_xlabel(f"{size[1]} px", fontsize=7)
        axes[(rows - 1) * cols].set_ylabel(f"{size[0]} px", fontsize=7)
        subfig.suptitle(f"channel {channel}", fontsize=9)
    for subfig in subfigs[n_blocks:]:
        subfig.set_visible(False)
    each = "; one per image" if patches.get("one_per_image") else ""
    fig.suptitle(title or f"Top-{k} image patches of {patches['layer']} (receptive field "
                 f"{size[0]}x{size[1]} pixels{each})", fontsize=10)
    plt.close(fig)  # returned to the caller: pyplot must not show it a second time
    return fig
