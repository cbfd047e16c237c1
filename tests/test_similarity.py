"""The grader's similarity report (cnnlab.grading.similarity): copies are found through renaming,
reordering and comments; independent work and the lab's starter code are not."""

from __future__ import annotations

import hashlib
import html
import inspect
import json
import os
import re
import subprocess
import sys
from types import SimpleNamespace

import pytest

import cnnlab.ops
from cnnlab.grading.similarity import (
    DEFAULT_THRESHOLD,
    REFERENCE_PREFIX,
    SimilarPair,
    kgram_hashes,
    normalised_code,
    reference_sources,
    similar_column,
    similar_pairs,
    similarity_html,
    write_similarity_html,
)
from tests.conftest import ROOT

EX = "01.correlate2d"


def _lab_cell(folder: str, exercise_id: str) -> str:
    notebook = json.loads((ROOT / folder / "01_convolutions_by_hand.ipynb").read_text())
    for cell in notebook["cells"]:
        if f"exercise:{exercise_id}" in cell.get("metadata", {}).get("tags", []):
            return "".join(cell["source"])
    raise LookupError(exercise_id)


#: The lab's own starter cell for 01.correlate2d (signature, docstring, two np.asarray lines).
STARTER = _lab_cell("labs", EX)
SOLUTION = _lab_cell("solutions", EX)

#: The starter, completed with a double loop.
LOOPS = STARTER.replace("    # YOUR CODE HERE\n    raise NotImplementedError()", """\
    kh, kw = kernel.shape
    height = image.shape[0] - kh + 1
    width = image.shape[1] - kw + 1
    result = np.zeros((height, width))
    for row in range(height):
        for col in range(width):
            total = 0.0
            for a in range(kh):
                for b in range(kw):
                    total += image[row + a, col + b] * kernel[a, b]
            result[row, col] = total
    return result""")

#: The same exercise, written independently: numpy's sliding windows and one tensor contraction.
WINDOWS = STARTER.replace("    # YOUR CODE HERE\n    raise NotImplementedError()", """\
    from numpy.lib.stride_tricks import sliding_window_view
    patches = sliding_window_view(image, kernel.shape)
    return np.tensordot(patches, kernel, axes=((2, 3), (0, 1)))""")

#: A third independent one: im2col, a matrix of flattened patches times the flattened kernel.
IM2COL = STARTER.replace("    # YOUR CODE HERE\n    raise NotImplementedError()", """\
    rows = image.shape[0] - kernel.shape[0] + 1
    cols = image.shape[1] - kernel.shape[1] + 1
    columns = []
    for i in range(rows):
        for j in range(cols):
            columns.append(image[i:i + kernel.shape[0], j:j + kernel.shape[1]].ravel())
    return (np.array(columns) @ kernel.ravel()).reshape(rows, cols)""")


def _renamed(source: str, names: dict) -> str:
    for old, new in names.items():
        source = re.sub(rf"\b{old}\b", new, source)
    return source


RENAMED = _renamed(LOOPS, {"kh": "kernel_h", "kw": "kernel_w", "height": "n_rows",
                           "width": "n_cols", "result": "feature_map", "row": "y", "col": "x",
                           "total": "acc", "a": "dy", "b": "dx", "image": "img",
                           "kernel": "k", "correlate2d": "correlate2d"})

#: Independent lines swapped: the two size lines, and the allocation before them.
REORDERED = LOOPS.replace("""\
    kh, kw = kernel.shape
    height = image.shape[0] - kh + 1
    width = image.shape[1] - kw + 1
    result = np.zeros((height, width))
""", """\
    kh, kw = kernel.shape
    width = image.shape[1] - kw + 1
    height = image.shape[0] - kh + 1
    result = np.zeros((height, width))
""").replace("""\
            for a in range(kh):
                for b in range(kw):
                    total += image[row + a, col + b] * kernel[a, b]
""", """\
            for b in range(kw):
                for a in range(kh):
                    total += image[row + a, col + b] * kernel[a, b]
""")

COMMENTED = LOOPS.replace("    kh, kw = kernel.shape\n", """\
    # size of the kernel

    kh, kw = kernel.shape  # rows, columns
""").replace("    for row in range(height):\n", """\

    # slide the kernel over every valid position
    for row in range(height):  # top to bottom

""").replace("    return result", "\n    # done!\n    return result  # (H - kh + 1, W - kw + 1)\n")


def _reference_copy() -> str:
    """cnnlab.ops.correlate2d pasted into the cell, its names changed."""
    source = inspect.getsource(cnnlab.ops.correlate2d)
    return _renamed(source, {"image": "picture", "kernel": "filt", "padded": "big",
                             "windows": "wins", "pads": "pp", "strides": "step"})


def _scores(pairs):
    return {(p.exercise, p.left, p.right): round(p.score, 3) for p in pairs}


def _all_scores(answers, references=None):
    """Every comparable pair's score (threshold 0), printed for the report."""
    pairs = similar_pairs(answers, {EX: STARTER}, references or {}, threshold=0.0)
    return _scores(pairs)


def _one_pair(answers, references=None):
    pairs = similar_pairs(answers, {EX: STARTER}, references or {})
    scores = _all_scores(answers, references)
    print(f"\nscores: {scores}")
    return pairs, scores


# --------------------------------------------------------------------------------------------
# Copies are reported


def test_exact_copy_scores_one_and_is_reported():
    pairs, scores = _one_pair({"alice": {EX: LOOPS}, "bob": {EX: LOOPS}})
    assert [(p.left, p.right) for p in pairs] == [("alice", "bob")]
    assert pairs[0].score == pytest.approx(1.0)
    # an exact copy is marked on both sides with the same text
    left = [LOOPS[a:b] for a, b in pairs[0].left_spans]
    right = [LOOPS[a:b] for a, b in pairs[0].right_spans]
    assert left == right and "for row in range(height)" in "".join(left)


def test_copy_with_every_variable_renamed_is_reported():
    pairs, scores = _one_pair({"alice": {EX: LOOPS}, "bob": {EX: RENAMED}})
    assert RENAMED.count("kernel_h") > 2 and not re.search(r"\b(row|kh|image)\b", RENAMED)
    assert [(p.left, p.right) for p in pairs] == [("alice", "bob")]
    assert pairs[0].score > 0.9


def test_copy_with_independent_lines_reordered_is_reported():
    pairs, scores = _one_pair({"alice": {EX: LOOPS}, "bob": {EX: REORDERED}})
    assert REORDERED != LOOPS
    assert [(p.left, p.right) for p in pairs] == [("alice", "bob")]
    assert pairs[0].score >= DEFAULT_THRESHOLD + 0.1


def test_copy_with_comments_and_blank_lines_added_is_reported():
    pairs, scores = _one_pair({"alice": {EX: LOOPS}, "bob": {EX: COMMENTED}})
    assert COMMENTED.count("#") > LOOPS.count("#") + 4
    assert [(p.left, p.right) for p in pairs] == [("alice", "bob")]
    assert pairs[0].score > 0.9
    # the marks in the commented copy never start or end inside an added comment, and the code
    # under each one (comments aside) is code of the original
    original = normalised_code(LOOPS)[0]
    for start, end in pairs[0].right_spans:
        assert not COMMENTED[start:end].startswith(("#", " ", "\n"))
        assert not COMMENTED[start:end].endswith((" ", "\n"))
        assert normalised_code(COMMENTED[start:end])[0] in original


def test_copy_of_cnnlab_implementation_is_reported_against_the_reference():
    references = reference_sources(
        [SimpleNamespace(id=EX, implementations=("cnnlab.ops.correlate2d",))], {EX: SOLUTION})
    copied = _reference_copy()
    assert "filt" in copied and not re.search(r"\bkernel\b", copied)
    answers = {"carol": {EX: copied}, "dave": {EX: WINDOWS}}
    pairs, scores = _one_pair(answers, references)
    assert [(p.left, p.right) for p in pairs] == [("carol", "cnnlab: cnnlab.ops.correlate2d")]
    assert pairs[0].score > 0.9


def test_copy_of_the_solution_cell_is_reported_against_the_solution():
    references = {EX: [(REFERENCE_PREFIX + "solution", SOLUTION)]}
    copied = _renamed(SOLUTION.replace("    ### BEGIN SOLUTION\n", "").replace(
        "    ### END SOLUTION\n", ""), {"out": "answer", "kh": "h", "kw": "w"})
    pairs, _ = _one_pair({"erin": {EX: copied}}, references)
    assert [(p.left, p.right) for p in pairs] == [("erin", "cnnlab: solution")]


# --------------------------------------------------------------------------------------------
# Independent work, the starter, and the references among themselves are not


def test_independent_implementations_are_not_reported():
    references = reference_sources(
        [SimpleNamespace(id=EX, implementations=("cnnlab.ops.correlate2d",))], {EX: SOLUTION})
    answers = {"alice": {EX: LOOPS}, "bob": {EX: WINDOWS}, "carol": {EX: IM2COL}}
    pairs, scores = _one_pair(answers, references)
    assert pairs == []
    assert len(scores) == 9  # 3 student pairs, 3 students x 2 references: all compared
    assert all(score < DEFAULT_THRESHOLD - 0.2 for score in scores.values())


@pytest.mark.slow
def test_scores_are_the_same_in_every_process():
    # Python's hash() is salted per process; the fingerprints must not be
    assert kgram_hashes("forVinrange(V):", 12).tolist()[:1] == [_blake48("forVinrange(")]
    code = ("import json, sys\nfrom cnnlab.grading.similarity import similar_pairs\n"
            "answers, starter = json.load(sys.stdin)\n"
            "print(similar_pairs(answers, starter, {}, threshold=0.0)[0].score)")
    stdin = json.dumps([{"a": {EX: LOOPS}, "b": {EX: REORDERED}}, {EX: STARTER}])
    runs = {subprocess.run([sys.executable, "-c", code], cwd=ROOT, input=stdin,
                           capture_output=True, text=True, check=True,
                           env=dict(os.environ, PYTHONHASHSEED=seed)).stdout
            for seed in ("1", "2", "3")}
    assert len(runs) == 1 and 0.5 < float(runs.pop()) < 1


def _blake48(text: str) -> int:
    return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=6).digest(), "little")


def test_untouched_and_lightly_edited_starter_cells_are_not_reported():
    edited = STARTER.replace("    # YOUR CODE HERE\n",
                             "    # YOUR CODE HERE\n    # I could not do this one\n    pass\n")
    answers = {"alice": {EX: STARTER}, "bob": {EX: STARTER}, "carol": {EX: edited},
               "dave": {EX: edited}}
    assert similar_pairs(answers, {EX: STARTER}, {}, threshold=0.0) == []
    # without the starter subtracted the same cells would be a near-perfect match
    assert similar_pairs(answers, {}, {}, min_new_code=1)[0].score == pytest.approx(1.0)


def test_references_are_never_compared_with_each_other():
    references = {EX: [("cnnlab: one", LOOPS), ("cnnlab: two", LOOPS)]}
    assert similar_pairs({"alice": {EX: WINDOWS}}, {EX: STARTER}, references) == []
    pairs = similar_pairs({"alice": {EX: LOOPS}}, {EX: STARTER}, references)
    assert [(p.left, p.right) for p in pairs] == [("alice", "cnnlab: one"),
                                                  ("alice", "cnnlab: two")]


def test_pairs_are_sorted_by_exercise_then_score():
    other = "01.convolve2d"
    answers = {"alice": {EX: LOOPS, other: WINDOWS}, "bob": {EX: RENAMED, other: WINDOWS},
               "carol": {EX: REORDERED}}
    pairs = similar_pairs(answers, {EX: STARTER}, {})
    assert [p.exercise for p in pairs] == sorted(p.exercise for p in pairs)
    assert pairs[0].exercise == other
    scores = [p.score for p in pairs if p.exercise == EX]
    assert scores == sorted(scores, reverse=True) and len(scores) == 3


def test_normalised_code_maps_every_character_back_to_its_token():
    source = "\n\n# lead\nclass Box:\r\n    size = len('ab')  # c\n"
    text, starts, ends = normalised_code(source)
    assert text == "classO:V=len(\"S\")"
    assert [source[a:b] for a, b in zip(starts, ends)][:3] == ["class"] * 3
    assert source[starts[5]:ends[5]] == "Box" and source[starts[7]:ends[7]] == "size"


# --------------------------------------------------------------------------------------------
# Reports


def _pair(exercise, left, right, score, left_source="x = 1\n", right_source="y = 1\n",
          left_spans=(), right_spans=()):
    return SimilarPair(exercise, left, right, score, left_source, right_source,
                       list(left_spans), list(right_spans))


def test_html_escapes_sorts_and_marks_the_shared_text():
    hostile = "def f(x):\n    return x  # </pre><script>document.title='owned'</script>\n"
    pairs = similar_pairs({"alice": {EX: LOOPS}, "<b>bob</b>": {EX: LOOPS}},
                          {EX: STARTER}, {})
    pairs += [_pair("01.convolve2d", "zed", "amy", 0.6, hostile, hostile, [(0, 9)], [(0, 9)]),
              _pair("01.convolve2d", "max", "amy", 0.9)]
    page = similarity_html(pairs, "01")
    assert "<script>" not in page and "&lt;/pre&gt;&lt;script&gt;" in page
    assert "<b>bob</b>" not in page and "&lt;b&gt;bob&lt;/b&gt;" in page
    headings = re.findall(r"<h2>(.*?)</h2>", page)
    assert headings == ["01.convolve2d", "01.correlate2d"]
    assert page.index("max") < page.index("zed")  # 90 % before 60 % within the section
    assert page.count("<section") == 2 and page.count('<pre class="left">') == 3
    # every <mark> of the exact copy (either column) holds text that both cells really contain
    section = page[page.index("<h2>01.correlate2d"):]
    for column in ("left", "right"):
        cell = re.search(rf'<pre class="{column}">(.*?)</pre>', section, re.S).group(1)
        marked = [html.unescape(m) for m in re.findall(r"<mark>(.*?)</mark>", cell, re.S)]
        assert marked and all(m in LOOPS for m in marked)
        assert "for row in range(height)" in "".join(marked)
    assert "%" in page and "100%" in page


def test_empty_html_says_no_pair_reached_the_threshold(tmp_path):
    path = write_similarity_html([], tmp_path / "similarity.html", "01", threshold=0.5)
    page = path.read_text()
    assert "No pair of cells reached the threshold (50%)" in page
    assert "<section" not in page


def test_similar_column_lists_each_submission_on_either_side():
    pairs = [_pair(EX, "alice", "bob", 0.93),
             _pair(EX, "alice", "cnnlab: cnnlab.ops.correlate2d", 0.81),
             _pair(EX, "bob", "cnnlab: solution", 0.95),
             _pair("01.convolve2d", "alice", "carol", 0.7)]
    column = similar_column(pairs)
    assert column == {
        "alice": "01.convolve2d: carol 0.70; "
                 "01.correlate2d: bob 0.93, cnnlab: cnnlab.ops.correlate2d 0.81",
        "bob": "01.correlate2d: cnnlab: solution 0.95, alice 0.93",
        "carol": "01.convolve2d: alice 0.70",
    }
    assert similar_column([]) == {}


def test_reference_sources_resolves_cnnlab_implementations():
    exercises = [SimpleNamespace(id=EX, implementations=("cnnlab.ops.correlate2d",)),
                 SimpleNamespace(id="06.generator", implementations=(
                     "cnnlab.augment._generator.ImageDataGenerator",))]
    sources = reference_sources(exercises, {EX: SOLUTION})
    assert sources[EX] == [("cnnlab: cnnlab.ops.correlate2d",
                            inspect.getsource(cnnlab.ops.correlate2d)),
                           ("cnnlab: solution", SOLUTION)]
    label, source = sources["06.generator"][0]
    assert label == "cnnlab: cnnlab.augment._generator.ImageDataGenerator"
    assert source.startswith("class ImageDataGenerator")


@pytest.mark.parametrize("name", ["cnnlab.ops.no_such_function", "cnnlab.nowhere.correlate2d",
                                  "numpy.pi"])
def test_reference_sources_names_what_it_cannot_resolve(name):
    with pytest.raises(ValueError, match=re.escape(name)):
        reference_sources([SimpleNamespace(id=EX, implementations=(name,))], {})


def test_reference_sources_resolves_every_implementation_the_labs_name():
    from cnnlab.exercise import LABS, lab_exercises

    exercises = [ex for lab in LABS for ex in lab_exercises(lab)]
    sources = reference_sources(exercises, {})
    named = [name for ex in exercises for name in ex.implementations]
    assert len(named) > 40
    assert sum(len(found) for found in sources.values()) == len(named)
    assert all(source.lstrip().startswith(("def ", "class ", "@"))
               for found in sources.values() for _, source in found)
