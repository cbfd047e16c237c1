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
