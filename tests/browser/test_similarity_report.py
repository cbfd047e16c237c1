"""The grader's similarity report (``similarity.html``) as an instructor sees it, in Chromium.

A report for a few real pairs (:func:`cnnlab.grading.similarity.similar_pairs` on Lab 01 cells,
one with student text that tries to inject a ``<script>``) is written to ``tmp_path`` and opened
through ``file://`` in the session's Chromium (no JupyterLab is needed).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cnnlab.grading.similarity import normalised_code, similar_pairs, write_similarity_html

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[2]
TITLE = "Lab 01: similar exercise cells"
HOSTILE = "</pre><script>document.title = 'owned'; window.owned = 1</script>"


def _starter(exercise_id: str) -> str:
    notebook = json.loads((ROOT / "labs" / "01_convolutions_by_hand.ipynb").read_text())
    for cell in notebook["cells"]:
        if f"exercise:{exercise_id}" in cell.get("metadata", {}).get("tags", []):
            return "".join(cell["source"])
    raise LookupError(exercise_id)


def _completed(starter: str, body: str) -> str:
    return starter.replace("    # YOUR CODE HERE\n    raise NotImplementedError()", body)


CORRELATE = """\
    kh, kw = kernel.shape
    note = "{hostile}"
    out = np.zeros((image.shape[0] - kh + 1, image.shape[1] - kw + 1))
    for i in range(out.shape[0]):
        for j in range(out.shape[1]):
            out[i, j] = (image[i:i + kh, j:j + kw] * kernel).sum()
    return out"""

GRAYSCALE = """\
    image = np.asarray(image, dtype=np.float64) / 255.0
    red, green, blue = image[..., 0], image[..., 1], image[..., 2]
    gray = 0.2125 * red + 0.7154 * green + 0.0721 * blue
    return gray"""


@pytest.fixture(scope="module")
def chromium_page(browser):
    """A page of the session's Chromium (``browser`` in conftest.py): one Playwright per
    session, since a second sync Playwright cannot start inside the first."""
    page = browser.new_page()
    page.set_default_timeout(30_000)
    yield page
    page.close()


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    corr, gray = "01.correlate2d", "01.to_grayscale"
    copied = _completed(_starter(corr), CORRELATE.format(hostile=HOSTILE))
    renamed = copied.replace("out", "result").replace("kh", "rows").replace("kw", "cols")
    answers = {
        "alice": {corr: copied, gray: _completed(_starter(gray), GRAYSCALE)},
        "bob": {corr: copied},
        "carol": {corr: renamed},
        "dave": {gray: _completed(_starter(gray), GRAYSCALE.replace("gray", "luma"))},
    }
    pairs = similar_pairs(answers, {corr: _starter(corr), gray: _starter(gray)}, {})
    assert [(p.exercise, p.left, p.right) for p in pairs] == [
        (corr, "alice", "bob"), (corr, "alice", "carol"), (corr, "bob", "carol"),
        (gray, "alice", "dave")]
    path = write_similarity_html(pairs, tmp_path_factory.mktemp("report") / "similarity.html",
                                 "01")
    return path, pairs


def test_similarity_report_shows_sections_pairs_side_by_side_and_marks(chromium_page, report):
    path, pairs = report
    page = chromium_page
    page.goto(path.as_uri())
    page.wait_for_load_state("load")

    # the injected script stayed text: it neither ran nor became an element
    assert page.title() == TITLE
    assert page.evaluate("typeof window.owned") == "undefined"
    assert page.locator("script").count() == 0
    assert HOSTILE in page.locator("section").first.locator("pre.left").first.inner_text()

    headings = page.locator("section > h2")
    assert headings.all_inner_texts() == ["01.correlate2d", "01.to_grayscale"]
    for heading in headings.all():
        assert heading.is_visible()

    blocks = page.locator(".pair")
    assert blocks.count() == len(pairs)
    for block, pair in zip(blocks.all(), pairs):
        block.scroll_into_view_if_needed()
        header = block.locator("h3")
        assert header.is_visible()
        text = header.inner_text()
        assert pair.left in text and pair.right in text and f"{pair.score:.0%}" in text

        left, right = block.locator("pre.left"), block.locator("pre.right")
        assert left.is_visible() and right.is_visible()
        lbox, rbox = left.bounding_box(), right.bounding_box()
        assert abs(lbox["y"] - rbox["y"]) < 1  # same top
        assert lbox["x"] + lbox["width"] <= rbox["x"]  # left column entirely left of the right
        assert lbox["width"] > 300 and rbox["width"] > 300

        left_text, right_text = left.inner_text(), right.inner_text()
        for column, other in ((left, right_text), (right, left_text)):
            marks = column.locator("mark")
            assert marks.count() > 0
            for mark in marks.all():
                assert mark.is_visible()
                marked = mark.inner_text()
                assert marked.strip()
                if pair.score == 1.0 and "alice" in text and "bob" in text:
                    assert marked in left_text and marked in right_text  # an exact copy
                else:  # a renamed copy: the same code once names are normalised
                    assert normalised_code(marked)[0] in normalised_code(other)[0]
