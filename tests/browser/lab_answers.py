"""One exercise per lab for the browser test: which one to answer, and a typical wrong answer.

The correct answer is not written here: the test takes the exercise cell of
``solutions/NN_name.ipynb`` (solution markers dropped).  The wrong answer is a mistake a student
makes (forgetting the bias, averaging instead of weighting the channels); its self-check must
say FAIL with the hint of the failing case from ``cnnlab/exercises/labNN.py``.

Every lab in ``labs/`` needs an entry: a new lab without one fails the browser test, by design.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Answer", "ANSWERS", "answer_for"]


@dataclass(frozen=True)
class Answer:
    """The exercise to type into (``NN.name``) and the source of a wrong answer to it."""

    exercise_id: str
    wrong: str


ANSWERS = {
    "01": Answer(
        "01.to_grayscale",
        # The plain mean of R, G, B instead of the luminance weights.
        "def to_grayscale(image):\n"
        "    return np.asarray(image, dtype=np.float64).mean(axis=-1) / 255.0\n",
    ),
    "02": Answer(
        "02.conv_output_size",
        # Padding counted once instead of on both sides.
        "def conv_output_size(n, k, s=1, p=0):\n"
        "    return (n - k + p) // s + 1\n",
    ),
    "03": Answer(
        "03.global_average_pool",
        # Global max pooling instead of the average.
        "def global_average_pool(x):\n"
        "    return np.asarray(x, dtype=np.float64).max(axis=(1, 2))\n",
    ),
    "04": Answer(
        "04.dense_params",
        # The biases forgotten.
        "def dense_params(input_shape, units):\n"
        "    return int(np.prod(input_shape)) * units\n",
    ),
    "05": Answer(
        "05.separable_ratio",
        # Only the 1 / N of the depthwise part, the 1x1 pointwise convolution forgotten.
        "def separable_cost_ratio(kernel_size, in_channels, filters):\n"
        "    return 1 / filters\n",
    ),
    "07": Answer(
        "07.lr_schedule",
        # A smooth exponential decay instead of the slide's step schedule.
        "def learning_rate_at(epoch, initial_lr=0.01, halve_every=50):\n"
        "    return initial_lr * 0.5 ** (epoch / halve_every)\n",
    ),
    "08": Answer(
        "08.preprocess_caffe",
        # The mean subtracted, the channels left in RGB order (the lab's wrong-channel pitfall).
        "def preprocess_caffe(images):\n"
        "    images = np.array(images, dtype=np.float32)\n"
        "    return images - np.array([103.939, 116.779, 123.68], dtype=np.float32)\n",
    ),
    "06": Answer(
        "06.mixup",
        # The images mixed, the labels forgotten: each image keeps its own one-hot label.
        "def mixup_batch(images, labels, mix_weight, permutation):\n"
        "    images = np.asarray(images, dtype=np.float64)\n"
        "    weight = np.asarray(mix_weight, dtype=np.float64).reshape(-1, 1, 1, 1)\n"
        "    return weight * images + (1 - weight) * images[permutation], labels\n",
    ),
    "10": Answer(
        "10.fgsm_step",
        # The step without the clip to the pixel range 0..255.
        "def fgsm_step(x, gradient, epsilon):\n"
        "    return np.asarray(x, dtype=np.float64) + epsilon * np.sign(gradient)\n",
    ),
    "09": Answer(
        "09.preprocess_contract",
        # The formula without the contract: a batch rescaled to 0..1 goes through silently.
        "def preprocess_checked(images):\n"
        "    images = np.array(images, dtype=np.float32)\n"
        "    return (images - 127.0) / 128.0\n",
    ),
    "11": Answer(
        "11.iou",
        # The intersection divided by the true pixels only (recall), not by the union.
        "def iou_per_class(y_true, y_pred, num_classes):\n"
        "    y_true = np.asarray(y_true).ravel()\n"
        "    y_pred = np.asarray(y_pred).ravel()\n"
        "    return np.array([np.sum((y_true == c) & (y_pred == c)) / max(np.sum(y_true == c), 1)\n"
        "                     for c in range(num_classes)])\n",
    ),
}


def answer_for(lab: str) -> Answer:
    """The entry for lab ``NN``; a clear error when a lab has none yet."""
    try:
        return ANSWERS[lab]
    except KeyError:
        raise LookupError(
            f"lab {lab} has no entry in tests/browser/lab_answers.py: add "
            f'"{lab}": Answer("{lab}.<exercise>", "<source of a wrong answer>") '
            "for one of its exercises"
        ) from None
