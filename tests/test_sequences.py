"""cnnlab.sequences against hand computations: one-hot DNA, the synthetic motif task, PWMs."""

import cnnlab  # noqa: F401  (quiet TensorFlow first)
import matplotlib

matplotlib.use("Agg")  # no display in tests

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from cnnlab import sequences  # noqa: E402


def test_one_hot_dna_matches_a_hand_encoding_in_acgt_order():
    expected = np.array([[0, 0, 1, 0],   # G
                         [1, 0, 0, 0],   # A
                         [0, 0, 0, 1],   # T
                         [0, 0, 0, 1],   # T
                         [1, 0, 0, 0],   # A
                         [0, 1, 0, 0],   # C
                         [1, 0, 0, 0]])  # A
    got = sequences.one_hot_dna("GATTACA")
    assert got.shape == (7, 4) and got.dtype == np.float32
    np.testing.assert_array_equal(got, expected)


def test_one_hot_dna_of_a_list_stacks_and_lowercase_counts_as_uppercase():
    got = sequences.one_hot_dna(["acgt", "TTTT"])
    assert got.shape == (2, 4, 4)
    np.testing.assert_array_equal(got[0], np.eye(4))
    np.testing.assert_array_equal(got[1], np.tile([0, 0, 0, 1], (4, 1)))


def test_one_hot_dna_names_the_bad_character_and_its_position():
    with pytest.raises(ValueError, match=r"'N' at position 3 of sequence 1 .*A, C, G, T"):
        sequences.one_hot_dna(["ACGT", "ACGNT"[:4]])
    with pytest.raises(ValueError, match=r"'U' at position 1"):
        sequences.one_hot_dna("AUG")


def test_one_hot_dna_refuses_sequences_of_different_lengths():
    with pytest.raises(ValueError, match="different lengths .*crop or pad"):
        sequences.one_hot_dna(["ACGT", "ACG"])


def test_synthetic_motif_dataset_plants_the_motif_in_the_positives_only():
    motif = "TGACGTCA"
    seqs, labels, positions = sequences.synthetic_motif_dataset(
        200, 40, motif=motif, seed=3, mutation_rate=0.0)
    assert len(seqs) == 200 and all(len(s) == 40 for s in seqs)
    assert labels.sum() == 100
    for seq, label, start in zip(seqs, labels, positions):
        if label:
            assert seq[start:start + len(motif)] == motif
        else:
            assert start == -1
    # same seed, same data; another seed, other data
    again = sequences.synthetic_motif_dataset(200, 40, motif=motif, seed=3, mutation_rate=0.0)
    assert again[0] == seqs
    assert sequences.synthetic_motif_dataset(200, 40, motif=motif, seed=4)[0] != seqs


def test_synthetic_motif_mutations_follow_the_documented_pwm():
    motif = "ACGTAC"
    rate = 0.4
    seqs, labels, positions = sequences.synthetic_motif_dataset(
        4000, 10, motif=motif, seed=0, positive_fraction=1.0, mutation_rate=rate)
    planted = [s[p:p + len(motif)] for s, p in zip(seqs, positions)]
    observed = sequences.one_hot_dna(planted).mean(axis=0)
    expected = (1 - rate) * sequences.one_hot_dna(motif) + rate / 4
    np.testing.assert_allclose(observed, expected, atol=0.03)


def test_pwm_from_filter_softmax_of_a_hand_set_kernel():
    kernel = np.array([[2.0, 0.0, 0.0, 0.0],      # A strongly
                       [1.0, 1.0, 1.0, 1.0],      # flat
                       [0.0, 0.0, np.log(3), 0.0]])
    pwm = sequences.pwm_from_filter(kernel)
    e2 = np.exp(2.0)
    np.testing.assert_allclose(pwm[0], [e2 / (e2 + 3), 1 / (e2 + 3), 1 / (e2 + 3), 1 / (e2 + 3)])
    np.testing.assert_allclose(pwm[1], [0.25] * 4)
    np.testing.assert_allclose(pwm[2], [1 / 6, 1 / 6, 3 / 6, 1 / 6])
    # a constant added to a position changes nothing (the bias absorbs it); scale sharpens
    np.testing.assert_allclose(sequences.pwm_from_filter(kernel + [[5.0], [-2.0], [1.0]]), pwm)
    sharper = sequences.pwm_from_filter(kernel, scale=3.0)
    assert sharper[0, 0] > pwm[0, 0]


def test_pwm_from_filter_positive_part_of_a_hand_set_kernel_and_filter_index():
    kernel = np.zeros((2, 4, 3))
    kernel[:, :, 1] = [[3.0, 1.0, -1.0, -3.0],    # centred: 3, 1, -1, -3 -> 3/4, 1/4, 0, 0
                       [0.0, 0.0, 0.0, 0.0]]      # flat -> uniform
    pwm = sequences.pwm_from_filter(kernel, filter_index=1, method="positive")
    np.testing.assert_allclose(pwm, [[0.75, 0.25, 0, 0], [0.25, 0.25, 0.25, 0.25]])
    np.testing.assert_allclose(
        sequences.pwm_from_filter(3 * kernel, filter_index=1, method="positive"), pwm)
    with pytest.raises(ValueError, match="filter_index"):
        sequences.pwm_from_filter(kernel)
    with pytest.raises(ValueError, match="not 4"):
        sequences.pwm_from_filter(np.zeros((3, 5)))


def test_pwm_from_activations_averages_the_best_windows():
    x = sequences.one_hot_dna(["AACGT", "GGACG", "TTTTT"])
    # a k=3 filter, 3 windows per sequence: best windows "ACG" (seq 0, start 1) and
    # "ACG" (seq 1, start 2); seq 2 fires below half the best and is left out
    activations = np.array([[0.1, 2.0, 0.0],
                            [0.0, 0.5, 1.5],
                            [0.2, 0.3, 0.1]])
    pwm, count = sequences.pwm_from_activations(x, activations, threshold=0.5)
    assert count == 2
    np.testing.assert_array_equal(pwm, sequences.one_hot_dna("ACG"))
    pwm_all, count_all = sequences.pwm_from_activations(x, activations, threshold=0.0)
    assert count_all == 3
    np.testing.assert_allclose(pwm_all, (2 * sequences.one_hot_dna("ACG")
                                         + sequences.one_hot_dna("TTT")) / 3)


def test_information_content_is_two_bits_for_certain_and_zero_for_uniform():
    pwm = np.array([[1.0, 0, 0, 0], [0.25] * 4, [0.5, 0.5, 0, 0]])
    np.testing.assert_allclose(sequences.information_content(pwm), [2.0, 0.0, 1.0])
    with pytest.raises(ValueError, match="sum to 1"):
        sequences.information_content([[0.5, 0.1, 0.1, 0.1]])


def test_sequence_logo_letters_are_as_tall_as_probability_times_bits():
    pwm = np.array([[1.0, 0, 0, 0], [0.25] * 4, [0.5, 0, 0, 0.5]])
    fig = sequences.plot_sequence_logo(pwm, title="hand PWM")
    ax = fig.axes[0]
    heights = sorted(round(p.get_path().get_extents().height, 6) for p in ax.patches)
    # position 1: one A of 2 bits; position 2: empty; position 3: A and T of 0.5 x 1 bit
    assert heights == [0.5, 0.5, 2.0]
    assert ax.get_title() == "hand PWM" and ax.get_ylabel() == "information (bits)"
    plt.close(fig)


def _gat_counter():
    import keras
    from keras import layers

    kernel = np.zeros((3, 4, 1), dtype="float32")
    kernel[[0, 1, 2], [2, 0, 3], 0] = 1.0          # matches to G, A, T
    model = keras.Sequential([keras.Input(shape=(5, 4)), layers.Conv1D(1, 3, use_bias=False),
                              layers.GlobalMaxPooling1D()])
    model.set_weights([kernel])
    return model


def test_mutation_map_of_a_gat_counter_is_minus_one_over_the_gat_it_holds():
    # AGATC holds GAT at 1-3 (score 3): any mutation there leaves 2 matches; at 0 and 4 the
    # windows score at most 1, so the maximum stays 3.  Worked by hand, rows A, C, G, T.
    by_hand = np.array([[0, -1, 0, -1, 0], [0, -1, -1, -1, 0], [0, 0, -1, -1, 0],
                        [0, -1, -1, 0, 0]], dtype=float)
    changes = sequences.mutation_map(_gat_counter(), sequences.one_hot_dna("AGATC"))
    np.testing.assert_allclose(changes, by_hand, atol=1e-6)


@pytest.mark.slow
def test_mutation_map_matches_scoring_each_mutant_alone_in_small_batches():
    import keras
    from keras import layers

    keras.utils.set_random_seed(3)
    model = keras.Sequential([keras.Input(shape=(12, 4)), layers.Conv1D(3, 4, activation="relu"),
                              layers.Flatten(), layers.Dense(1, activation="sigmoid")])
    x = sequences.one_hot_dna("ACGTTGCAACGT")
    original = float(keras.ops.convert_to_numpy(model(x[None]))[0, 0])
    expected = np.zeros((4, 12))
    for i in range(12):
        for b in range(4):
            mutant = x.copy()
            mutant[i] = np.eye(4)[b]
            expected[b, i] = float(keras.ops.convert_to_numpy(model(mutant[None]))[0, 0]) - original
    changes = sequences.mutation_map(model, x, batch_size=7)
    np.testing.assert_allclose(changes, expected, atol=1e-6)
    assert np.all(changes[np.argmax(x, axis=1), np.arange(12)] == 0)


def test_mutation_map_names_a_bad_input_and_a_model_with_several_outputs():
    import keras
    from keras import layers

    with pytest.raises(ValueError, match="one-hot DNA"):
        sequences.mutation_map(_gat_counter(), np.zeros((5, 4)))
    two = keras.Sequential([keras.Input(shape=(5, 4)), layers.Flatten(), layers.Dense(2)])
    with pytest.raises(ValueError, match="one score"):
        sequences.mutation_map(two, sequences.one_hot_dna("AGATC"))
