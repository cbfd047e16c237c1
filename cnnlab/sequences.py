"""1-D convolutions over DNA: one-hot sequences, a synthetic motif task, filters read as motifs.

The lecture (ISPR Pisa, *CNN & Genomic Sequences*): "1D convolutions throughout the input
sequence", "Trained to respond to task-specific motifs", and DeepBind's "Use convolution
visualization to interpret results of CNN training" (Alipanahi et al., 2015).  A DNA sequence
of length L becomes an (L, 4) one-hot array (channels A, C, G, T), so a ``Conv1D`` filter of
width k is a (k, 4) table of weights: one weight per position and base, the same shape as a
position weight matrix (PWM).  This module holds

* :func:`one_hot_dna`: strings of A, C, G, T to one-hot arrays;
* :func:`synthetic_motif_dataset`: random sequences, a motif planted in the positives
  (**synthetic** data, generated here; no real genome);
* :func:`pwm_from_filter`, :func:`pwm_from_activations` and :func:`information_content`: a
  filter as per-position base probabilities (from its weights, or DeepBind's way from the
  windows where it fires) and bits;
* :func:`mutation_map`: in-silico mutagenesis, DeepBind's mutation map (the score change of
  every single-base mutation of one sequence: occlusion, for sequences);
* :func:`plot_sequence_logo`: the classic sequence logo (letters drawn with matplotlib, each
  scaled to its probability times the position's information content).

Used in: labs/11_beyond_images
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "DNA_ALPHABET",
    "BASE_COLORS",
    "one_hot_dna",
    "synthetic_motif_dataset",
    "pwm_from_filter",
    "pwm_from_activations",
    "information_content",
    "mutation_map",
    "plot_sequence_logo",
]

#: The channel order of :func:`one_hot_dna`: channel 0 is A, 1 is C, 2 is G, 3 is T.
DNA_ALPHABET = "ACGT"
#: The usual logo colours: A green, C blue, G orange, T red.
BASE_COLORS = {"A": "#109648", "C": "#255c99", "G": "#f7b32b", "T": "#d62839"}

_INDEX = {base: i for i, base in enumerate(DNA_ALPHABET)}


def one_hot_dna(sequences):
    """One-hot encode DNA: a string gives ``(L, 4)``, a list of N strings ``(N, L, 4)``.

    Channel order A, C, G, T (:data:`DNA_ALPHABET`); ``float32``, exactly one 1 per position.
    Lower-case letters (soft-masked genome) count as upper-case.  Any other character (``N``,
    ``U``, a space) raises a ``ValueError`` naming it and its position; a list of strings must
    have one length (a ``Conv1D`` batch is rectangular).

    >>> one_hot_dna("GAT").tolist()
    [[0.0, 0.0, 1.0, 0.0], [1.0, 0.0, 0.0, 0.0], [0.0, 0.0, 0.0, 1.0]]

    Used in: labs/11_beyond_images
    """
    if isinstance(sequences, str):
        return _one_hot_one(sequences, where="")
    if isinstance(sequences, np.ndarray) and sequences.dtype.kind == "U":
        sequences = sequences.tolist()
    try:
        items = list(sequences)
    except TypeError:
        raise TypeError(f"one_hot_dna takes a string or a list of strings, not a "
                        f"{type(sequences).__name__}") from None
    if not items:
        raise ValueError("one_hot_dna got an empty list; give at least one sequence")
    for index, item in enumerate(items):
        if not isinstance(item, str):
            raise TypeError(f"sequence {index} is a {type(item).__name__}, not a string of "
                            "A, C, G, T; decode bytes first (b.decode())")
    lengths = {len(item) for item in items}
    if len(lengths) > 1:
        raise ValueError(f"the sequences have different lengths ({min(lengths)} to "
                         f"{max(lengths)}); crop or pad them to one length first, since a "
                         "Conv1D batch needs one length")
    return np.stack([_one_hot_one(item, where=f" of sequence {i}") for i, item in
                     enumerate(items)])


def _one_hot_one(sequence, where):
    codes = np.array([_INDEX.get(base, -1) for base in sequence.upper()], dtype=np.int64)
    if codes.size and codes.min() < 0:
        position = int(np.argmax(codes < 0))
        raise ValueError(
            f"character {sequence[position]!r} at position {position}{where} is not one of "
            f"A, C, G, T; replace or drop it (e.g. skip windows that contain N)")
    encoded = np.zeros((len(sequence), 4), dtype=np.float32)
    encoded[np.arange(len(sequence)), codes] = 1.0
    return encoded


def synthetic_motif_dataset(n, length, motif="TGACGTCA", seed=0, positive_fraction=0.5,
                            mutation_rate=0.1):
    """Synthetic DNA: uniform random bases, ``motif`` planted once in every positive sequence.

    The data are **synthetic** (no real genome): every base is drawn uniformly from A, C, G, T;
    a fraction ``positive_fraction`` of the sequences (label 1) gets a copy of ``motif`` at a
    uniform random position, each of its bases replaced, with probability ``mutation_rate``, by
    a uniform random base (possibly the same one), so the planted motif has the known PWM
    ``(1 - mutation_rate) * one_hot_dna(motif) + mutation_rate / 4``.  Negatives (label 0) are
    background only; they may contain the motif by chance, with probability about
    ``(length - k + 1) / 4**k`` (0.07 % for the default 8-base motif in length 50).  The default
    motif ``TGACGTCA`` is the consensus site of the CREB transcription factor.

    Returns:
        ``(sequences, labels, positions)``: a list of ``n`` strings of ``length`` bases, an int64
        array of labels, and an int64 array with the start of the planted motif (``-1`` for
        the negatives).

    Used in: labs/11_beyond_images
    """
    motif = str(motif).upper()
    if not motif or set(motif) - set(DNA_ALPHABET):
        raise ValueError(f"motif {motif!r} must be a non-empty string of A, C, G, T")
    if int(length) < len(motif):
        raise ValueError(f"length {length} is shorter than the motif ({len(motif)} bases); "
                         "make the sequences at least as long as the motif")
    if not 0.0 <= positive_fraction <= 1.0 or not 0.0 <= mutation_rate <= 1.0:
        raise ValueError("positive_fraction and mutation_rate are probabilities in [0, 1]")
    n, length = int(n), int(length)
    rng = np.random.default_rng(seed)
    codes = rng.integers(0, 4, size=(n, length))
    labels = np.zeros(n, dtype=np.int64)
    labels[rng.permutation(n)[: int(round(positive_fraction * n))]] = 1
    positions = np.full(n, -1, dtype=np.int64)
    motif_codes = np.array([_INDEX[base] for base in motif])
    for i in np.flatnonzero(labels):
        start = int(rng.integers(0, length - len(motif) + 1))
        planted = motif_codes.copy()
        mutated = rng.uniform(size=len(motif)) < mutation_rate
        planted[mutated] = rng.integers(0, 4, size=int(mutated.sum()))
        codes[i, start:start + len(motif)] = planted
        positions[i] = start
    letters = np.array(list(DNA_ALPHABET))
    sequences = ["".join(row) for row in letters[codes]]
    return sequences, labels, positions


def pwm_from_filter(kernel, filter_index=None, method="softmax", scale=1.0):
    """A Conv1D filter on one-hot DNA as a position weight matrix ``(k, 4)``: rows sum to 1.

    ``kernel`` is a filter ``(k, 4)`` or a Conv1D kernel ``(k, 4, filters)`` with
    ``filter_index`` choosing the filter.  On one-hot input the filter adds one weight per
    position (that of the base present), so adding a constant to the 4 weights of a position
    only shifts the output by a constant (which the bias absorbs).  Both methods therefore first
    centre each position (subtract the mean of its 4 weights):

    * ``"softmax"`` (default): ``softmax(scale * centred weights)`` over the 4 bases, reading
      the weights as log-odds of each base (``scale`` is an inverse temperature: a larger
      scale gives a sharper PWM; weights alone do not fix it);
    * ``"positive"``: the positive part of the centred weights, normalised to sum 1 (a position
      whose 4 weights are equal becomes uniform, 0.25 each).  It ignores the scale of the
      weights, position by position, so a nearly flat position can look as sharp as a
      strong one: use it to read the consensus, not the probabilities.

    This reads the weights only; :func:`pwm_from_activations` counts bases in the input windows
    where the filter fires, as DeepBind's logos do.

    Used in: labs/11_beyond_images
    """
    weights = np.asarray(kernel, dtype=np.float64)
    if weights.ndim == 3:
        if filter_index is None:
            raise ValueError(f"kernel has shape {weights.shape} (k, 4, filters): pass "
                             "filter_index to choose one of its filters")
        weights = weights[:, :, int(filter_index)]
    elif weights.ndim != 2:
        raise ValueError(f"kernel must be (k, 4) or (k, 4, filters), not {weights.shape}")
    if weights.shape[1] != 4:
        raise ValueError(f"kernel has {weights.shape[1]} input channels, not 4 (A, C, G, T): "
                         "use the first Conv1D layer on one-hot DNA")
    centred = weights - weights.mean(axis=1, keepdims=True)
    if method == "positive":
        positive = np.clip(centred, 0.0, None)
        total = positive.sum(axis=1, keepdims=True)
        flat = total[:, 0] <= 1e-12 * max(1.0, float(np.abs(weights).max()))
        return np.where(flat[:, None], 0.25, positive / np.where(total > 0, total, 1.0))
    if method == "softmax":
        logits = float(scale) * centred
        logits -= logits.max(axis=1, keepdims=True)
        exp = np.exp(logits)
        return exp / exp.sum(axis=1, keepdims=True)
    raise ValueError(f"method {method!r} is unknown; use 'softmax' or 'positive'")


def pwm_from_activations(x, activations, threshold=0.5):
    """DeepBind's PWM: the base frequencies of the windows where a filter fires most.

    ``x`` is one-hot DNA ``(N, L, 4)``; ``activations`` ``(N, L - k + 1)`` the output of one
    filter of a ``Conv1D(kernel_size=k, padding="valid")`` on ``x`` (after its ReLU).  For each
    sequence take the window of the filter's largest activation; keep the sequences whose
    largest activation is at least ``threshold`` times the largest over all sequences, and
    average their (k, 4) windows: row i holds the frequency of A, C, G, T at position i of the
    windows that excite the filter (Alipanahi et al., 2015, build their logos this way).

    Returns:
        ``(pwm, count)``: the ``(k, 4)`` frequencies and the number of windows averaged.

    Used in: labs/11_beyond_images
    """
    x = np.asarray(x, dtype=np.float64)
    activations = np.asarray(activations, dtype=np.float64)
    if x.ndim != 3 or x.shape[2] != 4:
        raise ValueError(f"x must be one-hot DNA (N, L, 4), not {x.shape}")
    if activations.ndim == 3 and activations.shape[2] == 1:
        activations = activations[:, :, 0]
    if activations.ndim != 2 or activations.shape[0] != x.shape[0] \
            or not 1 <= activations.shape[1] <= x.shape[1]:
        raise ValueError(f"activations {activations.shape} must be (N, L - k + 1) for x "
                         f"{x.shape}: one filter of a Conv1D with padding='valid' "
                         "(take [:, :, filter_index])")
    kernel_size = x.shape[1] - activations.shape[1] + 1
    best = activations.max(axis=1)
    if not best.max() > 0:
        raise ValueError("the filter never fires (all activations <= 0): choose another filter")
    keep = np.flatnonzero(best >= threshold * best.max())
    where = activations.argmax(axis=1)
    windows = np.stack([x[i, where[i]:where[i] + kernel_size] for i in keep])
    return windows.mean(axis=0), int(len(keep))


def information_content(pwm):
    """Bits per position of a PWM ``(k, 4)``: ``2 - H`` with ``H = -sum p log2 p`` (0 log 0 = 0).

    2 bits where one base is certain, 0 where all four are equally likely.

    Used in: labs/11_beyond_images
    """
    pwm = _check_pwm(pwm)
    with np.errstate(divide="ignore", invalid="ignore"):
        entropy = -np.sum(np.where(pwm > 0, pwm * np.log2(pwm), 0.0), axis=1)
    return 2.0 - entropy


def mutation_map(model, one_hot_sequence, batch_size=256):
    """In-silico mutagenesis: ``(4, L)`` score changes of every single-base mutation.

    The lecture (*DeepBind*): "Assess mutations that deplete/increase binding score", drawn as
    *Mutation Maps* (Alipanahi et al., 2015): entry ``[b, i]`` is ``score(mutant) -
    score(sequence)`` for the sequence with position ``i`` set to base ``b`` (row order A, C, G,
    T), 0 at the sequence's own base.  The score is the model's one output for the sequence
    (``model`` maps ``(N, L, 4)`` to ``(N, 1)`` or ``(N,)``; give it the logit, not a saturated
    sigmoid, to see changes at a confident positive).  Occlusion (Zeiler & Fergus) for
    sequences: the "grey patch" is a different base.  The ``4 L`` mutants go through the model
    ``batch_size`` at a time.

    Used in: labs/11_beyond_images
    """
    import keras

    x = np.asarray(one_hot_sequence, dtype=np.float32)
    if x.ndim != 2 or x.shape[1] != 4 or not np.all(x.sum(axis=1) == 1):
        raise ValueError(f"one_hot_sequence must be one-hot DNA (L, 4), one 1 per row, not an "
                         f"array of shape {x.shape}; encode it with one_hot_dna")
    length = len(x)
    mutants = np.repeat(x[None], 4 * length, axis=0).reshape(4, length, length, 4)
    for base in range(4):
        mutants[base, np.arange(length), np.arange(length)] = np.eye(4, dtype=np.float32)[base]
    batch = np.concatenate([x[None], mutants.reshape(4 * length, length, 4)])
    scores = []
    for start in range(0, len(batch), int(batch_size)):
        out = keras.ops.convert_to_numpy(model(batch[start:start + int(batch_size)]))
        out = np.asarray(out, dtype=np.float64).reshape(len(out), -1)
        if out.shape[1] != 1:
            raise ValueError(f"the model gives {out.shape[1]} outputs per sequence; "
                             "mutation_map needs one score (a model with one output unit)")
        scores.append(out[:, 0])
    scores = np.concatenate(scores)
    changes = scores[1:].reshape(4, length) - scores[0]
    changes[np.argmax(x, axis=1), np.arange(length)] = 0.0
    return changes


def _check_pwm(pwm):
    pwm = np.asarray(pwm, dtype=np.float64)
    if pwm.ndim != 2 or pwm.shape[1] != 4:
        raise ValueError(f"a PWM has shape (k, 4) (positions x A, C, G, T), not {pwm.shape}")
    if np.any(pwm < -1e-9) or not np.allclose(pwm.sum(axis=1), 1.0, atol=1e-6):
        raise ValueError("every row of a PWM holds probabilities that sum to 1; build it with "
                         "pwm_from_filter or normalise the rows")
    return np.clip(pwm, 0.0, 1.0)


def plot_sequence_logo(pwm, title=None, ax=None):
    """A sequence logo of a PWM ``(k, 4)``: returns the matplotlib figure.

    At each position the four letters are stacked, smallest at the bottom; a letter's height
    is its probability times the position's information content (bits, 0 to 2), so a certain
    base stands 2 bits tall and a uniform position is empty.  Letters are drawn as glyph
    outlines (``matplotlib.textpath.TextPath``) stretched to their box, coloured as
    :data:`BASE_COLORS`.

    Used in: labs/11_beyond_images
    """
    import matplotlib.pyplot as plt
    from matplotlib import transforms
    from matplotlib.font_manager import FontProperties
    from matplotlib.patches import PathPatch
    from matplotlib.textpath import TextPath

    pwm = _check_pwm(pwm)
    bits = information_content(pwm)
    if ax is None:
        fig, ax = plt.subplots(figsize=(max(3.0, 0.55 * len(pwm) + 1.0), 2.4))
    else:
        fig = ax.figure
    font = FontProperties(family="DejaVu Sans", weight="bold")
    for position, (row, height) in enumerate(zip(pwm, bits)):
        bottom = 0.0
        for base_index in np.argsort(row, kind="stable"):
            letter_height = row[base_index] * height
            if letter_height < 1e-3:
                continue
            letter = DNA_ALPHABET[base_index]
            glyph = TextPath((0, 0), letter, size=1, prop=font)
            box = glyph.get_extents()
            place = (transforms.Affine2D().translate(-box.x0, -box.y0)
                     .scale(0.9 / box.width, letter_height / box.height)
                     .translate(position + 0.05, bottom))
            ax.add_patch(PathPatch(place.transform_path(glyph), facecolor=BASE_COLORS[letter],
                                   edgecolor="none"))
            bottom += letter_height
    ax.set_xlim(0, len(pwm))
    ax.set_ylim(0, 2)
    ax.set_xticks(np.arange(len(pwm)) + 0.5, [str(i + 1) for i in range(len(pwm))])
    ax.set_xlabel("position in the motif")
    ax.set_ylabel("information (bits)")
    ax.set_title(title or "Sequence logo")
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    return fig
