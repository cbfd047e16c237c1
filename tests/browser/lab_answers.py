"""The exercises the browser test answers in each lab, with a typical wrong answer to each.

The correct answer is not written here: the test takes the exercise cell of
``solutions/NN_name.ipynb`` (solution markers dropped).  The wrong answer is a mistake a student
makes (forgetting the bias, averaging instead of weighting the channels); its self-check must
say FAIL with the hint of the failing case from ``cnnlab/exercises/labNN.py``.

Every lab in ``labs/`` needs an entry: a new lab without one fails the browser test, by design.
Each lab's first answer is its classic exercise; the others are the exercises issue 15 added
(students write the idea: the max-pooling backward pass, a dense block, the two-phase
fine-tune, NMS...), so each new exercise is typed in, checked PASS, then FAIL with its hint.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Answer", "ANSWERS", "answers_for"]


@dataclass(frozen=True)
class Answer:
    """The exercise to type into (``NN.name``) and the source of a wrong answer to it."""

    exercise_id: str
    wrong: str


ANSWERS = {
    "01": (
        Answer(
            "01.to_grayscale",
            # The plain mean of R, G, B instead of the luminance weights.
            "def to_grayscale(image):\n"
            "    return np.asarray(image, dtype=np.float64).mean(axis=-1) / 255.0\n",
        ),
    ),
    "02": (
        Answer(
            "02.conv_output_size",
            # Padding counted once instead of on both sides.
            "def conv_output_size(n, k, s=1, p=0):\n"
            "    return (n - k + p) // s + 1\n",
        ),
        Answer(
            "02.effective_receptive_field",
            # The signed gradient: its positive and negative paths cancel instead of adding up.
            "import tensorflow as tf\n"
            "\n"
            "\n"
            "def effective_receptive_field(model, input_shape):\n"
            "    x = tf.zeros((1, *input_shape))\n"
            "    with tf.GradientTape() as tape:\n"
            "        tape.watch(x)\n"
            "        y = model(x)\n"
            "        unit = y[0, y.shape[1] // 2, y.shape[2] // 2, 0]\n"
            "    gradient = tape.gradient(unit, x).numpy()[0].sum(axis=-1)\n"
            "    return gradient / gradient.sum()\n",
        ),
    ),
    "03": (
        Answer(
            "03.global_average_pool",
            # Global max pooling instead of the average.
            "def global_average_pool(x):\n"
            "    return np.asarray(x, dtype=np.float64).max(axis=(1, 2))\n",
        ),
        Answer(
            "03.max_pool2d_backward",
            # Overlapping windows overwrite the gradient instead of adding to it.
            "def max_pool2d_backward(x, upstream_grad, size, strides=None):\n"
            "    x = np.asarray(x, dtype=np.float64)\n"
            "    upstream_grad = np.asarray(upstream_grad, dtype=np.float64)\n"
            "    strides = size if strides is None else strides\n"
            "    dx = np.zeros_like(x)\n"
            "    for i in range(upstream_grad.shape[0]):\n"
            "        for j in range(upstream_grad.shape[1]):\n"
            "            window = x[i * strides:i * strides + size, j * strides:j * strides + "
            "size]\n"
            "            a, b = np.unravel_index(np.argmax(window), window.shape)\n"
            "            dx[i * strides + a, j * strides + b] = upstream_grad[i, j]\n"
            "    return dx\n",
        ),
    ),
    "04": (
        Answer(
            "04.dense_params",
            # The biases forgotten.
            "def dense_params(input_shape, units):\n"
            "    return int(np.prod(input_shape)) * units\n",
        ),
    ),
    "05": (
        Answer(
            "05.separable_ratio",
            # Only the 1 / N of the depthwise part, the 1x1 pointwise convolution forgotten.
            "def separable_cost_ratio(kernel_size, in_channels, filters):\n"
            "    return 1 / filters\n",
        ),
        Answer(
            "05.dense_block",
            # The convolutions keep their biases (the BatchNorm after them makes biases useless).
            "def dense_block(x, num_layers, growth_rate):\n"
            "    for _ in range(num_layers):\n"
            "        y = layers.BatchNormalization()(x)\n"
            "        y = layers.Activation(\"relu\")(y)\n"
            "        y = layers.Conv2D(growth_rate, 3, padding=\"same\")(y)\n"
            "        x = layers.Concatenate()([x, y])\n"
            "    return x\n",
        ),
    ),
    "07": (
        Answer(
            "07.lr_schedule",
            # A smooth exponential decay instead of the slide's step schedule.
            "def learning_rate_at(epoch, initial_lr=0.01, halve_every=50):\n"
            "    return initial_lr * 0.5 ** (epoch / halve_every)\n",
        ),
    ),
    "08": (
        Answer(
            "08.preprocess_caffe",
            # The mean subtracted, the channels left in RGB order (the lab's wrong-channel pitfall).
            "def preprocess_caffe(images):\n"
            "    images = np.array(images, dtype=np.float32)\n"
            "    return images - np.array([103.939, 116.779, 123.68], dtype=np.float32)\n",
        ),
    ),
    "06": (
        Answer(
            "06.mixup",
            # The images mixed, the labels forgotten: each image keeps its own one-hot label.
            "def mixup_batch(images, labels, mix_weight, permutation):\n"
            "    images = np.asarray(images, dtype=np.float64)\n"
            "    weight = np.asarray(mix_weight, dtype=np.float64).reshape(-1, 1, 1, 1)\n"
            "    return weight * images + (1 - weight) * images[permutation], labels\n",
        ),
    ),
    "10": (
        Answer(
            "10.fgsm_step",
            # The step without the clip to the pixel range 0..255.
            "def fgsm_step(x, gradient, epsilon):\n"
            "    return np.asarray(x, dtype=np.float64) + epsilon * np.sign(gradient)\n",
        ),
        Answer(
            "10.top_patches",
            # The crop starts at the unit's first input pixel: the receptive field is not centred.
            "def top_patches(activations, images, k, size, jump, start):\n"
            "    activations = np.asarray(activations, dtype=np.float64)\n"
            "    images = np.asarray(images, dtype=np.float32)\n"
            "    count, height, width = activations.shape\n"
            "    flat = activations.reshape(count, height * width)\n"
            "    best = flat.argmax(axis=1)\n"
            "    values = flat[np.arange(count), best]\n"
            "    chosen = np.argsort(-values, kind=\"stable\")[:k]\n"
            "    crops = []\n"
            "    for n in chosen:\n"
            "        row, col = divmod(int(best[n]), width)\n"
            "        top, left = start + row * jump, start + col * jump\n"
            "        crop = np.zeros((size, size, images.shape[-1]), dtype=np.float32)\n"
            "        part = images[n, top:top + size, left:left + size]\n"
            "        crop[:part.shape[0], :part.shape[1]] = part\n"
            "        crops.append(crop)\n"
            "    return {\"images\": [int(n) for n in chosen],\n"
            "            \"values\": [float(values[n]) for n in chosen], \"crops\": "
            "np.stack(crops)}\n",
        ),
    ),
    "09": (
        Answer(
            "09.preprocess_contract",
            # The formula without the contract: a batch rescaled to 0..1 goes through silently.
            "def preprocess_checked(images):\n"
            "    images = np.array(images, dtype=np.float32)\n"
            "    return (images - 127.0) / 128.0\n",
        ),
        Answer(
            "09.two_phase_fine_tune",
            # No compile after unfreezing: Keras keeps training the weights it compiled, the head's.
            "def two_phase_fine_tune(model, backbone, data, n_blocks, lr, head_epochs=1,\n"
            "                        fine_tune_epochs=1, batch_size=16):\n"
            "    x, y = data\n"
            "    backbone.trainable = False\n"
            "    model.compile(optimizer=keras.optimizers.Adam(lr), "
            "loss=\"sparse_categorical_crossentropy\",\n"
            "                  jit_compile=False)\n"
            "    model.fit(x, y, batch_size=batch_size, epochs=head_epochs, verbose=0)\n"
            "    blocks = []\n"
            "    for layer in backbone.layers:\n"
            "        if layer.name.startswith(\"block\") and layer.name.split(\"_\")[0] not in "
            "blocks:\n"
            "            blocks.append(layer.name.split(\"_\")[0])\n"
            "    kept = set(blocks[len(blocks) - n_blocks:]) if n_blocks > 0 else set()\n"
            "    backbone.trainable = True\n"
            "    for layer in backbone.layers:\n"
            "        layer.trainable = (layer.name.split(\"_\")[0] in kept\n"
            "                           and not isinstance(layer, layers.BatchNormalization))\n"
            "    model.fit(x, y, batch_size=batch_size, epochs=fine_tune_epochs, verbose=0)\n"
            "    return model\n",
        ),
    ),
    "11": (
        Answer(
            "11.iou",
            # The intersection divided by the true pixels only (recall), not by the union.
            "def iou_per_class(y_true, y_pred, num_classes):\n"
            "    y_true = np.asarray(y_true).ravel()\n"
            "    y_pred = np.asarray(y_pred).ravel()\n"
            "    return np.array([np.sum((y_true == c) & (y_pred == c)) / max(np.sum(y_true == "
            "c), 1)\n"
            "                     for c in range(num_classes)])\n",
        ),
        Answer(
            "11.nms",
            # Every box suppresses, kept or not: a dropped box still drops the boxes after it.
            "def box_iou(box, boxes):\n"
            "    box = np.asarray(box, dtype=np.float64)\n"
            "    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)\n"
            "    height = np.clip(np.minimum(box[2], boxes[:, 2]) - np.maximum(box[0], boxes[:, "
            "0]),\n"
            "                     0, None)\n"
            "    width = np.clip(np.minimum(box[3], boxes[:, 3]) - np.maximum(box[1], boxes[:, "
            "1]),\n"
            "                    0, None)\n"
            "    intersection = height * width\n"
            "    area = (box[2] - box[0]) * (box[3] - box[1])\n"
            "    areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])\n"
            "    return intersection / (area + areas - intersection)\n"
            "\n"
            "\n"
            "def non_max_suppression(boxes, scores, iou_threshold=0.5):\n"
            "    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)\n"
            "    scores = np.asarray(scores, dtype=np.float64)\n"
            "    order = np.argsort(-scores, kind=\"stable\")\n"
            "    kept, seen = [], []\n"
            "    for index in order:\n"
            "        if not seen or np.all(box_iou(boxes[index], boxes[seen]) <= iou_threshold):\n"
            "            kept.append(int(index))\n"
            "        seen.append(int(index))\n"
            "    return kept\n",
        ),
        Answer(
            "11.mutation_map",
            # The mutants' scores, not their change from the original sequence's score.
            "def mutation_map(model, one_hot_sequence):\n"
            "    x = np.asarray(one_hot_sequence, dtype=\"float32\")\n"
            "    length = len(x)\n"
            "    mutants = []\n"
            "    for base in range(4):\n"
            "        for position in range(length):\n"
            "            mutant = x.copy()\n"
            "            mutant[position] = np.eye(4)[base]\n"
            "            mutants.append(mutant)\n"
            "    scores = keras.ops.convert_to_numpy(model(np.stack(mutants))).reshape(-1)\n"
            "    return scores.reshape(4, length)\n",
        ),
        Answer(
            "11.build_fcn",
            # The plain FCN: the skip from the H/2 encoder map is forgotten.
            "def build_skip_fcn(input_shape, num_classes):\n"
            "    image_in = keras.Input(shape=input_shape, name=\"image\")\n"
            "    x = layers.Conv2D(16, 3, padding=\"same\", activation=\"relu\", "
            "name=\"enc1\")(image_in)\n"
            "    x = layers.MaxPool2D(2, name=\"pool1\")(x)\n"
            "    x = layers.Conv2D(32, 3, padding=\"same\", activation=\"relu\", "
            "name=\"enc2\")(x)\n"
            "    x = layers.MaxPool2D(2, name=\"pool2\")(x)\n"
            "    x = layers.Conv2D(32, 3, padding=\"same\", activation=\"relu\", "
            "name=\"bottleneck\")(x)\n"
            "    x = layers.Conv2DTranspose(32, 2, strides=2, activation=\"relu\", "
            "name=\"up1\")(x)\n"
            "    x = layers.Conv2DTranspose(16, 2, strides=2, activation=\"relu\", "
            "name=\"up2\")(x)\n"
            "    x = layers.Conv2D(num_classes, 1, activation=\"softmax\", name=\"per_pixel\")(x)\n"
            "    return keras.Model(image_in, x, name=\"fcn\")\n",
        ),
    ),
}


def answers_for(lab: str) -> tuple[Answer, ...]:
    """The answers for lab ``NN``; a clear error when a lab has none yet."""
    try:
        return ANSWERS[lab]
    except KeyError:
        raise LookupError(
            f"lab {lab} has no entry in tests/browser/lab_answers.py: add "
            f'"{lab}": (Answer("{lab}.<exercise>", "<source of a wrong answer>"),) '
            "for one of its exercises"
        ) from None
