"""``ImageDataGenerator.as_layers``: the nearest pipeline of Keras 3 preprocessing layers.

The table of what maps exactly lives in ``ImageDataGenerator.as_layers``'s docstring.
"""

from __future__ import annotations

import math
import warnings

import numpy as np

__all__ = ["nearest_layers"]


def _shift_fraction(spec, size, name):
    """Keras 2's shift spec as the fraction RandomTranslation takes (and whether it is exact)."""
    if not spec:
        return 0.0, True
    if isinstance(spec, float) and spec < 1:
        return spec, True
    bound = float(np.max(np.abs(spec)))
    if bound < 1:  # a list of fractions
        return bound, False
    if size is None:
        raise ValueError(
            f"{name}={spec!r} is in pixels, and RandomTranslation needs a fraction of the "
            "image: pass as_layers(image_size=(height, width))"
        )
    return min(bound / size, 1.0), False


def nearest_layers(generator, image_size=None, seed=None):
    """Build the ``keras.Sequential`` that ``ImageDataGenerator.as_layers`` returns."""
    import keras
    from keras import layers

    if image_size is not None:
        height, width = (int(v) for v in image_size)
    else:
        height = width = None
    common = dict(
        fill_mode=generator.fill_mode,
        interpolation="bilinear" if generator.interpolation_order == 1 else "nearest",
        fill_value=float(generator.cval),
        data_format=generator.data_format,
    )
    counter = iter(range(1000))

    def layer_seed():
        index = next(counter)
        return None if seed is None else int(seed) + index

    pipeline, dropped = [], []
    if generator.rotation_range:
        pipeline.append(layers.RandomRotation(generator.rotation_range / 360.0,
                                              seed=layer_seed(), **common))
    h_factor, _ = _shift_fraction(generator.height_shift_range, height,
                                        "height_shift_range")
    w_factor, _ = _shift_fraction(generator.width_shift_range, width,
                                        "width_shift_range")
    if h_factor or w_factor:
        pipeline.append(layers.RandomTranslation(h_factor, w_factor, seed=layer_seed(),
                                                 **common))
    if generator.shear_range:
        factor = min(abs(math.sin(math.radians(generator.shear_range))), 1.0)
        pipeline.append(layers.RandomShear(x_factor=(0.0, factor), y_factor=0.0,
                                           seed=layer_seed(), **common))
    low, high = generator.zoom_range
    if not (low == 1 and high == 1):
        pipeline.append(layers.RandomZoom(height_factor=(low - 1.0, high - 1.0),
                                          width_factor=(low - 1.0, high - 1.0),
                                          seed=layer_seed(), **common))
    flips = {(True, False): "horizontal", (False, True): "vertical",
             (True, True): "horizontal_and_vertical"}
    mode = flips.get((generator.horizontal_flip, generator.vertical_flip))
    if mode:
        pipeline.append(layers.RandomFlip(mode, seed=layer_seed(),
                                          data_format=generator.data_format))
    if generator.channel_shift_range:
        factor = min(generator.channel_shift_range / 255.0, 1.0)
        pipeline.append(layers.RandomBrightness(factor, value_range=(0, 255),
                                                seed=layer_seed(),
                                                data_format=generator.data_format))
    if generator.brightness_range is not None:
        low_b, high_b = generator.brightness_range
        factor = (max(low_b - 1.0, -1.0), min(high_b - 1.0, 1.0))
        pipeline.append(layers.RandomBrightness(factor, value_range=(0, 255),
                                                seed=layer_seed(),
                                                data_format=generator.data_format))
    if generator.preprocessing_function is not None:
        dropped.append("preprocessing_function")
    if generator.rescale:
        pipeline.append(layers.Rescaling(generator.rescale))
    if generator.samplewise_center or generator.samplewise_std_normalization:
        dropped.append("samplewise_center/samplewise_std_normalization")
    if generator.featurewise_center or generator.featurewise_std_normalization:
        if generator.mean is None:
            dropped.append("featurewise statistics (call gen.fit(x_train) first)")
        else:
            axis = -1 if generator.data_format == "channels_last" else 1
            mean = np.ravel(generator.mean)
            std = np.ravel(generator.std) if generator.std is not None and \
                generator.featurewise_std_normalization else np.ones_like(mean)
            pipeline.append(layers.Normalization(axis=axis, mean=mean, variance=std ** 2))
    if generator.zca_whitening:
        dropped.append("zca_whitening")
    if dropped:
        warnings.warn(
            "as_layers(): no Keras 3 layer for " + ", ".join(dropped) + "; these are left "
            "out of the pipeline (apply them to the data before the model)",
            UserWarning,
            stacklevel=3,
        )
    if not pipeline:
        pipeline.append(layers.Identity())
    return keras.Sequential(pipeline, name="augmentation")
