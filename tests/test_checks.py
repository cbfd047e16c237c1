"""cnnlab._checks: one rule for sizes, strides and pairs (issue 18)."""

import numpy as np
import pytest

from cnnlab import _checks


@pytest.mark.parametrize("value", [2.5, 2.0, "2", None, True, np.float32(2)])
def test_a_non_integer_is_a_type_error(value):
    with pytest.raises(TypeError, match="strides must be an integer"):
        _checks.integer(value, "strides")


@pytest.mark.parametrize("value", [0, -1, np.int64(0)])
def test_an_integer_below_the_minimum_is_a_value_error_that_names_the_fix(value):
    with pytest.raises(ValueError, match=r"strides must be an integer >= 1; strides=1 moves"):
        _checks.integer(value, "strides")


def test_numpy_integers_are_plain_ints():
    assert _checks.integer(np.int64(3), "kernel_size") == 3
    assert type(_checks.integer(np.int64(3), "kernel_size")) is int


def test_pair_broadcasts_an_int_and_never_rounds():
    assert _checks.pair(2, "pool_size") == (2, 2)
    assert _checks.pair((2, 1), "strides") == (2, 1)
    assert _checks.pair(np.array([3, 1]), "strides") == (3, 1)
    with pytest.raises(TypeError, match=r"strides\[0\] must be an integer"):
        _checks.pair((2.5, 2.5), "strides")
    with pytest.raises(ValueError, match="has 3 values but the input has 2"):
        _checks.pair((1, 2, 3), "strides")


def test_before_after_and_choice():
    assert _checks.before_after((0, 2), "padding") == (0, 2)
    with pytest.raises(ValueError, match=r"padding\[0\]=-1 is not allowed"):
        _checks.before_after((-1, 2), "padding")
    with pytest.raises(ValueError, match=r"not a \(before, after\) pair"):
        _checks.before_after(1, "padding")
    assert _checks.choice("SAME", "padding", ("valid", "same")) == "same"
    with pytest.raises(ValueError, match="use one of 'valid', 'same'"):
        _checks.choice("full", "padding", ("valid", "same"))
    with pytest.raises(TypeError):
        _checks.choice(1, "padding", ("valid", "same"))


def test_number_pair_keeps_fractions_and_refuses_what_is_no_number():
    from fractions import Fraction

    assert _checks.number_pair(Fraction(1, 2), "start") == (Fraction(1, 2), Fraction(1, 2))
    assert _checks.number_pair((3, 2.5), "jump") == (3, 2.5)
    with pytest.raises(TypeError, match="size must be a number or a"):
        _checks.number_pair("3", "size")
    with pytest.raises(TypeError, match="size must be a number or a"):
        _checks.number_pair((3, None), "size")
    with pytest.raises(ValueError, match="has 3 values"):
        _checks.number_pair((1, 2, 3), "size")
