"""Fooling a ConvNet: adversarial examples by FGSM and PGD.

Goodfellow et al. (2015), Kurakin et al. (2017), Madry et al. (2018): the Rennes deck's macaw,
"Ara 97 %" turned into "Bookshelf 99 %" by noise too small to see.  Both attacks step along
the sign of the gradient of the cross-entropy computed from the class scores (the softmax
dropped, see ``cnnlab.interpret.surgery``).  Lab 10 (looking inside) attacks its models.
"""

from __future__ import annotations

import numbers

import numpy as np
from keras import ops
from tqdm.auto import tqdm

from cnnlab.interpret.surgery import (
    _class_index,
    _fit_images,
    _num_classes,
    _preprocessed,
    _scores,
    input_gradient,
)

__all__ = ["fgsm", "pgd"]

# --------------------------------------------------------------------------- attacks


def _check_attack(model, x, y, epsilon, clip):
    batch, had_batch = _fit_images(model, x, name="x", batch=True)
    labels = np.broadcast_to(np.atleast_1d(_class_index(model, y, name="y")), (len(batch),))
    if isinstance(epsilon, bool) or not isinstance(epsilon, numbers.Real):
        raise ValueError(f"epsilon must be a number of pixel-value units, got {epsilon!r}")
    if clip is None:
        if not epsilon > 0:
            raise ValueError(f"epsilon {epsilon} must be > 0")
        return batch, had_batch, labels, None
    low, high = (float(v) for v in clip)
    if not low < high:
        raise ValueError(f"clip={clip} must be (low, high) with low < high")
    if not 0 < epsilon <= high - low:
        raise ValueError(
            f"epsilon {epsilon} is outside the pixel range: use 0 < epsilon <= {high - low:g} "
            f"(clip={clip}); e.g. epsilon=2 is 2 intensity levels of 0..255"
        )
    if batch.min() < low or batch.max() > high:
        raise ValueError(
            f"x has values in [{batch.min():g}, {batch.max():g}], outside clip={clip}: pass "
            "the raw pixels (and preprocess= for the model's preprocessing) or set clip="
        )
    return batch, had_batch, labels, (low, high)


def _loss_gradient(model, batch, labels, preprocess):
    """Gradient of the cross-entropy of ``labels`` (from the logits) w.r.t. the batch."""
    scores = _scores(model)
    onehot = ops.convert_to_tensor(np.eye(_num_classes(model), dtype=np.float32)[labels])

    def loss(t):
        return -ops.sum(onehot * ops.log_softmax(scores(preprocess(t)), axis=-1), axis=-1)

    return input_gradient(loss, batch)


def _clip(batch, bounds):
    return batch if bounds is None else np.clip(batch, bounds[0], bounds[1])


def _attack_result(original, adversarial, had_batch, return_perturbation):
    adversarial = adversarial.astype(np.float32)
    delta = adversarial - original
    if not had_batch:
        adversarial, delta = adversarial[0], delta[0]
    return (adversarial, delta) if return_perturbation else adversarial


def fgsm(model, x, y, epsilon, targeted=False, clip=(0, 255), preprocess=None,
         return_perturbation=False):
    """Fast gradient sign method (Goodfellow et al., 2015): one step of size ``epsilon``.

    Untargeted (``y`` = the true labels): ``x + epsilon * sign(grad_x L(x, y))`` climbs the
    cross-entropy of the true class; targeted (``y`` = the wanted labels): ``x - epsilon *
    sign(grad_x L(x, y))`` descends the loss of the target.  ``L`` is the cross-entropy
    computed from the logits (see the module docstring).  The result is clipped to ``clip``,
    the valid pixel range (``None``: no clip).  ``epsilon`` is in the units of ``x``: with
    0..255 pixels, ``epsilon=1`` changes every pixel by at most one intensity level, and
    integer pixels stay integers.  ``x``: one image or a batch; ``y``: one label or one per
    image.  ``return_perturbation=True`` also returns ``x_adv - x``.

    Measured on EfficientNet-Lite0 (``cnnlab.pretrained``, ``preprocess=preprocess_lite0``)
    with chelsea centre-cropped to 224x224: Egyptian cat 0.396, tiger cat 0.326, tabby 0.165
    becomes, with ``epsilon=0.5`` (half an intensity level, the smallest of 0.5, 1, 2, 4
    tried), tiger cat 0.595, tabby 0.212, Egyptian cat 0.036; with ``epsilon=1`` (still a
    uint8 image) tiger cat 0.568, tabby 0.236, lynx 0.025 (TensorFlow and JAX agree to 1e-6;
    pinned by ``tests/test_interpret.py``).

    Used in: labs/10_looking_inside
    """
    batch, had_batch, labels, bounds = _check_attack(model, x, y, epsilon, clip)
    gradient = _loss_gradient(model, batch, labels, _preprocessed(preprocess))
    direction = -np.sign(gradient) if targeted else np.sign(gradient)
    adversarial = _clip(batch + float(epsilon) * direction, bounds)
    return _attack_result(batch, adversarial, had_batch, return_perturbation)


def pgd(model, x, y, epsilon, step=None, steps=10, targeted=False, clip=(0, 255),
        random_start=False, seed=None, preprocess=None, progress=False,
        return_perturbation=False):
    """Iterative FGSM: BIM (Kurakin et al., 2017), or PGD (Madry et al., 2018) with a random
    start.

    ``steps`` signed-gradient steps of size ``step`` (default ``2.5 * epsilon / steps``, Madry
    et al.'s choice); after each, the image is projected back into the L-infinity ball
    ``|x_adv - x| <= epsilon`` and clipped to ``clip``, the valid pixel range.
    ``random_start=True`` starts from ``x + uniform(-epsilon, epsilon)`` drawn from
    ``numpy.random.default_rng(seed)``; without it this is BIM, and one step of size
    ``epsilon`` is :func:`fgsm`.  ``targeted``, ``y``, ``preprocess``, ``return_perturbation``:
    as in :func:`fgsm`.

    Used in: labs/10_looking_inside
    """
    batch, had_batch, labels, bounds = _check_attack(model, x, y, epsilon, clip)
    if not isinstance(steps, numbers.Integral) or isinstance(steps, bool) or steps < 1:
        raise ValueError(f"steps must be a positive integer, got {steps!r}")
    step = 2.5 * float(epsilon) / steps if step is None else step
    if isinstance(step, bool) or not isinstance(step, numbers.Real) or not step > 0:
        raise ValueError(f"step must be a positive number, got {step!r}")
    preprocess = _preprocessed(preprocess)
    epsilon = float(epsilon)
    adversarial = batch.copy()
    if random_start:
        rng = np.random.default_rng(seed)
        adversarial = _clip(batch + rng.uniform(-epsilon, epsilon, batch.shape), bounds)
    for _ in tqdm(range(steps), desc="pgd", unit="step", disable=not progress):
        gradient = _loss_gradient(model, adversarial.astype(np.float32), labels, preprocess)
        direction = -np.sign(gradient) if targeted else np.sign(gradient)
        adversarial = adversarial + float(step) * direction
        adversarial = np.clip(adversarial, batch - epsilon, batch + epsilon)
        adversarial = _clip(adversarial, bounds)
    return _attack_result(batch, adversarial, had_batch, return_perturbation)
