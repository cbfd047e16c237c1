"""Similar exercise cells across a batch: MOSS-style winnowing, with the starter code subtracted.

Every submission's cell for an exercise is compared with (a) cnnlab's own implementation(s) of
that exercise and the instructor's solution cell (:func:`reference_sources`) and (b) every other
submission's cell for the same exercise.  As in MOSS (Schleimer, Wilkerson and Aiken, SIGMOD
2003), each cell becomes a set of *fingerprints*: its code is tokenised and normalised (every
variable, attribute and function name becomes ``V`` or ``F``, every string ``S``; comments and
whitespace are dropped; keywords, builtins, numbers and punctuation stay), the hashes of all its
``k``-character substrings are taken, and winnowing keeps the smallest hash of each ``window``
consecutive ones.  The lab's starter code for the cell is MOSS's *base file*: every ``k``-gram
of the starter is removed from every side, so the signature, docstring and ``np.asarray`` lines
a lab hands out never count, and an untouched or lightly edited starter cell has (almost) no
code of its own left and is not compared (:data:`MIN_NEW_CODE`).

A pair's ``score`` is the share of the smaller side's fingerprints that the other side also
has (MOSS's "percent of the smaller file"): a student who copies a whole cell and adds code of
their own still scores near 1 against the source.

Parameters, measured on Lab 01's ``correlate2d`` cells (``tests/test_similarity.py`` prints
the scores): see :data:`K`, :data:`WINDOW`, :data:`MIN_NEW_CODE` and :data:`DEFAULT_THRESHOLD`.

What comes from copydetect (``copydetect.utils``): winnowing (``winnow``), the overlap of two
fingerprint sets (``find_fingerprint_overlap``), merging matched ``k``-grams into regions
(``get_copied_slices``) and the escaped highlighting (``highlight_overlap``).  Three pieces are
written here, on purpose:

* the ``k``-gram hash (:func:`kgram_hashes`): copydetect's ``hashed_kgrams`` (and so
  ``get_document_fingerprints``) uses Python's ``hash()``, which is salted per process, so the
  fingerprints winnowing keeps, and every score, changed from one run to the next (measured:
  the same reordered copy scored 0.886 in one run, 0.911 in the next).  A 48-bit BLAKE2b hash
  makes a batch's scores reproducible, and 48 bits stay exact in the float buffer of
  copydetect's Python ``winnow``;
* the tokenising (:func:`normalised_code`) applies the rules of copydetect's ``filter_code``
  but keeps, for each normalised character, where its token starts and ends in the cell.
  ``filter_code`` returns an offset table that cannot map a match back exactly: its lexer strips
  a cell's leading blank lines and turns ``\\r\\n`` into ``\\n`` (every later offset shifts), it
  records a class name's length instead of the running offset (copydetect 0.5), and a match's
  end lands on the next token, so marks would swallow trailing comments;
* the starter is subtracted from the fingerprint set here, not as
  ``get_document_fingerprints``' ``boilerplate``: that calls ``np.intersect1d(...,
  assume_unique=True)`` on the winnowed hashes, which repeat when a cell repeats code, and a
  repeated fingerprint then loses positions (its marks) although no starter code has it.

Importing ``copydetect.utils`` runs copydetect's package ``__init__``, which imports its
detector and with it ``matplotlib.pyplot`` (about 0.4 s, once per grader process).

Used in: ``cnnlab grade`` (the ``similar`` column of ``scores.csv`` and ``similarity.html``).
"""

from __future__ import annotations

import hashlib
import html
import inspect
from dataclasses import dataclass
from itertools import combinations
from pathlib import Path

import numpy as np
from copydetect.utils import (
    find_fingerprint_overlap,
    get_copied_slices,
    highlight_overlap,
    winnow,
)
from pygments import lexers, token

from cnnlab.grading.integrity import resolve_name
from cnnlab.grading.reports import write_atomic

__all__ = ["K", "WINDOW", "MIN_NEW_CODE", "DEFAULT_THRESHOLD", "REFERENCE_PREFIX",
           "SimilarPair", "normalised_code", "kgram_hashes", "similar_pairs", "reference_sources",
           "similar_column", "similarity_html", "write_similarity_html"]

#: Length, in normalised characters, of the substrings that are hashed.  A normalised line of a
#: small cell is 10-30 characters (``forVinrange(V.V[0]):`` is 20), so 12 is about half a line:
#: long enough that ``V,V=V.V`` or ``returnV`` alone is never a fingerprint, short enough that a
#: copy with its lines reordered keeps most of them (a reordered line loses only the k-grams that
#: straddle its ends).  Measured (``WINDOW=4``; reordered copy / highest independent pair):
#: k=8 0.98 / 0.21, k=10 0.96 / 0.18, k=12 0.87 / 0.13, k=15 0.81 / 0.15, copydetect's default
#: k=25 (window 1) 0.73 / 0.06.  Exact, renamed and commented copies score 1.0 at every k.
K = 12

#: Winnowing window: the smallest hash of every 4 consecutive ``k``-grams is kept, so any run of
#: ``K + WINDOW - 1 = 15`` normalised characters (about one line) shared by two cells is
#: guaranteed to give a common fingerprint, and a 3-line answer still has about 30 fingerprints.
#: A window of 6 cut them by a third (40 to 28 in the solution cell) and lowered the reordered
#: copy to 0.84.
WINDOW = 4

#: A cell with fewer than this many normalised characters of its own (characters inside no
#: ``k``-gram the starter also has) is not compared: about two lines of code.  A fingerprint
#: count cannot tell a token from code: an insertion of ``L`` characters creates ``L + K - 1``
#: new ``k``-grams, so Lab 01's ``correlate2d`` starter with ``pass`` added kept 7 fingerprints
#: (a 3-line answer has 29) and two such cells scored 1.0.  New characters measured: ``pass`` 4,
#: ``return None`` 9, a 3-line sliding-window answer 74, the double loop 142.  The one-line answers
#: of a lab (``01.convolve2d``'s ``return correlate2d(image, np.asarray(kernel)[::-1, ::-1])``,
#: 27) are left out too, on purpose: most students write that same line, and a match says
#: nothing.  Of the 67 exercises of labs 01-11, 12 have an instructor's solution under 40 (17-39:
#: one-line formulas such as ``02.conv_output_size``); a student's answer as short is not
#: compared either.
MIN_NEW_CODE = 40

#: Pairs scoring at least this are reported.  Measured on Lab 01's ``correlate2d``
#: (``tests/test_similarity.py``): copies of another student's cell, exact, with every name
#: changed or with comments and blank lines added, score 1.0, with independent lines reordered
#: 0.87, and cnnlab's own ``correlate2d`` pasted with its names changed 1.0; independent answers
#: (a double loop, numpy's sliding windows, im2col, the instructor's loop) score 0.0-0.18 against
#: each other.  0.5 sits in that gap, nearer the independent side, since a reported pair is a
#: prompt for the instructor to look, never a verdict.
DEFAULT_THRESHOLD = 0.5

#: The start of a reference label: ``"cnnlab: cnnlab.ops.correlate2d"``, ``"cnnlab: solution"``.
REFERENCE_PREFIX = "cnnlab: "


@dataclass(frozen=True)
class SimilarPair:
    """Two cells of one exercise that share fingerprints: ``left`` is a submission's name,
    ``right`` another submission's name or a reference label (``"cnnlab: ..."``).

    ``score`` is the share (0..1) of the smaller side's non-starter fingerprints found in the
    other; ``left_spans``/``right_spans`` are the ``(start, end)`` character offsets, in
    ``left_source``/``right_source``, of the matched regions, in order and not overlapping.
    """

    exercise: str
    left: str
    right: str
    score: float
    left_source: str
    right_source: str
    left_spans: list[tuple[int, int]]
    right_spans: list[tuple[int, int]]


# --------------------------------------------------------------------------------------------
# Fingerprints


def _python_lexer():
    # stripnl=False, ensurenl=False: the tokens' text is the cell, character for character.
    return lexers.get_lexer_by_name("python", stripnl=False, ensurenl=False)


def normalised_code(source: str) -> tuple[str, np.ndarray, np.ndarray]:
    """``source`` normalised by copydetect's ``filter_code`` rules, and where each normalised
    character comes from: ``(text, starts, ends)``, with ``source[starts[i]:ends[i]]`` the
    token that gave ``text[i]``.

    Names (variables, attributes, ``Name.Variable``) become ``V``, function names ``F``, class
    names ``O``, strings ``S`` (their quotes ``"``), and comments and whitespace disappear;
    keywords, builtins, numbers and punctuation stay as written.  ``%magic`` lines of a notebook
    cell are tokenised as Python (``%`` then a name).

    Used in: :func:`similar_pairs`.
    """
    text, starts, ends = [], [], []
    variables = {token.Name, token.Name.Variable, token.Name.Attribute}
    for index, kind, value in _python_lexer().get_tokens_unprocessed(source):
        if kind in variables:
            out = "V"
        elif kind in token.Name.Function:
            out = "F"
        elif kind in token.Name.Class:
            out = "O"
        elif kind in (token.Comment.Preproc, token.Comment.Hashbang):
            out = "P"
        elif kind in token.Text or kind in token.Comment:
            continue
        elif kind in token.Literal.String:
            out = '"' if value in ("'", '"') else "S"
        else:
            out = value
        text.append(out)
        starts.extend([index] * len(out))
        ends.extend([index + len(value)] * len(out))
    return "".join(text), np.array(starts, dtype=int), np.array(ends, dtype=int)


@dataclass(frozen=True)
class _Cell:
    label: str
    source: str
    text: str
    starts: np.ndarray
    ends: np.ndarray
    hashes: set
    positions: dict  # hash -> positions in ``text`` where that k-gram starts
    new_code: int  # normalised characters inside no k-gram of the starter


def kgram_hashes(text: str, k: int) -> np.ndarray:
    """The hash of every ``k``-character substring of ``text``, in order (48-bit BLAKE2b, the
    same in every process; empty when ``text`` is shorter than ``k``).

    Used in: :func:`similar_pairs`.
    """
    return np.array([int.from_bytes(hashlib.blake2b(text[i:i + k].encode(), digest_size=6)
                                    .digest(), "little")
                     for i in range(len(text) - k + 1)], dtype=np.int64)


def _starter_hashes(starter: str, k: int) -> set:
    """Every ``k``-gram hash of the normalised starter (MOSS's base file; no winnowing, as
    copydetect does for its boilerplate, so no starter k-gram can survive on the other side)."""
    return set(kgram_hashes(normalised_code(starter)[0], k).tolist())


def _cell(label: str, source: str, starter: set, k: int, window: int) -> _Cell:
    """A cell's winnowed fingerprints, less the starter's, where each one starts, and how much
    of its normalised code is its own."""
    text, starts, ends = normalised_code(source)
    positions: dict[int, list[int]] = {}
    hashes = kgram_hashes(text, k)
    from_starter = np.zeros(len(text), dtype=bool)
    for index, value in enumerate(hashes.tolist()):
        if value in starter:
            from_starter[index:index + k] = True
    if len(hashes):
        kept, where = winnow(hashes, window_size=window, remove_duplicates=False)
        for value, index in zip(kept.tolist(), where.tolist()):
            if value not in starter:
                positions.setdefault(value, []).append(index)
    return _Cell(label, source, text, starts, ends, set(positions), positions,
                 int(np.count_nonzero(~from_starter)))


def _spans(cell: _Cell, matched: np.ndarray, k: int) -> list[tuple[int, int]]:
    """The matched ``k``-grams (positions in the normalised text), merged into regions and
    mapped back to ``(start, end)`` character offsets in the cell's source."""
    slices = get_copied_slices(matched, k)
    return [(int(cell.starts[start]), int(cell.ends[end - 1]))
            for start, end in zip(slices[0].astype(int), slices[1].astype(int))]


def _score(left: _Cell, right: _Cell) -> float:
    """The share of the smaller side's fingerprints that the other side has too."""
    return len(left.hashes & right.hashes) / min(len(left.hashes), len(right.hashes))


def _pair(exercise: str, left: _Cell, right: _Cell, score: float, k: int) -> SimilarPair:
    matched_left, matched_right = find_fingerprint_overlap(
        left.hashes, right.hashes, left.positions, right.positions)
    return SimilarPair(exercise, left.label, right.label, float(score), left.source,
                       right.source, _spans(left, matched_left, k),
                       _spans(right, matched_right, k))


def similar_pairs(answers: dict, starter: dict, references: dict,
                  threshold: float = DEFAULT_THRESHOLD, *, k: int = K, window: int = WINDOW,
                  min_new_code: int = MIN_NEW_CODE) -> list[SimilarPair]:
    """The pairs of cells of one exercise whose ``score`` is at least ``threshold``, sorted by
    exercise, then score (highest first), then labels.

    ``answers`` is ``{submission name: {exercise id: cell source}}``; ``starter`` is
    ``{exercise id: the lab's starter cell}`` (subtracted from every side; an exercise missing
    from it has nothing subtracted); ``references`` is ``{exercise id: [(label, source), ...]}``
    (:func:`reference_sources`).  Each submission is compared with every other submission and
    every reference of the same exercise, never a reference with a reference; a cell with fewer
    than ``min_new_code`` normalised characters outside the starter's ``k``-grams is not
    compared (:data:`MIN_NEW_CODE`).  ``k`` and ``window`` are :data:`K` and :data:`WINDOW`.
    In a pair, ``left`` is always a submission (the earlier name of two).

    Used in: ``cnnlab grade``.
    """
    exercises = sorted({ex for cells in answers.values() for ex in cells})
    pairs = []
    for ex in exercises:
        base = _starter_hashes(starter.get(ex, ""), k)
        students = [_cell(name, answers[name][ex], base, k, window)
                    for name in sorted(answers) if ex in answers[name]]
        refs = [_cell(label, source, base, k, window) for label, source in references.get(ex, ())]
        students = [c for c in students if c.new_code >= min_new_code and c.hashes]
        refs = [c for c in refs if c.new_code >= min_new_code and c.hashes]
        candidates = list(combinations(students, 2)) + [(s, r) for s in students for r in refs]
        for left, right in candidates:
            score = _score(left, right)
            if score >= threshold:
                pairs.append(_pair(ex, left, right, score, k))
    return sorted(pairs, key=lambda p: (p.exercise, -p.score, p.left, p.right))


# --------------------------------------------------------------------------------------------
# References


def reference_sources(exercises, solution_cells: dict) -> dict:
    """``{exercise id: [(label, source), ...]}``: the source of each of an exercise's
    ``implementations`` (labelled ``"cnnlab: <dotted name>"``) and the instructor's solution cell
    from ``solution_cells`` (``{exercise id: source}``, labelled ``"cnnlab: solution"``).

    ``exercises`` are :class:`cnnlab.exercise.Exercise`-like objects (``.id``,
    ``.implementations``).  A name that cannot be imported or has no source raises
    :class:`ValueError` naming it.

    Used in: ``cnnlab grade``.
    """
    out: dict[str, list[tuple[str, str]]] = {}
    for ex in exercises:
        sources = []
        for name in ex.implementations:
            try:
                sources.append((REFERENCE_PREFIX + name, inspect.getsource(resolve_name(name))))
            except (ImportError, AttributeError, TypeError, OSError) as error:
                raise ValueError(
                    f"exercise {ex.id}: implementation {name!r} cannot be resolved to source "
                    f"code ({type(error).__name__}: {error}); fix `implementations` in "
                    f"cnnlab/exercises/lab{ex.id.split('.')[0]}.py"
                ) from None
        if ex.id in solution_cells:
            sources.append((REFERENCE_PREFIX + "solution", solution_cells[ex.id]))
        out[ex.id] = sources
    return out


# --------------------------------------------------------------------------------------------
# Reports


def similar_column(pairs: list[SimilarPair]) -> dict:
    """``{submission name: text}`` for the ``similar`` column of ``scores.csv``: per exercise
    (sorted), the other side of each pair the submission is in (either side), highest score
    first, e.g. ``"01.correlate2d: bob 0.93, cnnlab: cnnlab.ops.correlate2d 0.81; 01.convolve2d:
    carol 0.77"``.  Submissions in no pair are absent (their column is empty).

    Used in: ``cnnlab grade``.
    """
    found: dict[str, dict[str, list[tuple[float, str]]]] = {}
    for pair in pairs:
        sides = [(pair.left, pair.right)]
        if not pair.right.startswith(REFERENCE_PREFIX):
            sides.append((pair.right, pair.left))
        for name, other in sides:
            found.setdefault(name, {}).setdefault(pair.exercise, []).append((pair.score, other))
    return {
        name: "; ".join(
            f"{ex}: " + ", ".join(f"{other} {score:.2f}"
                                  for score, other in sorted(matches, key=lambda m: (-m[0], m[1])))
            for ex, matches in sorted(by_exercise.items()))
        for name, by_exercise in sorted(found.items())
    }


_STYLE = """
body { font-family: system-ui, sans-serif; margin: 1.5em; color: #222; }
section { margin-bottom: 2.5em; }
.pair { margin: 1em 0 2em; }
.pair h3 { font-size: 1em; margin: 0.3em 0; }
.cells { display: grid; grid-template-columns: 1fr 1fr; gap: 1em; }
.cells pre { margin: 0; padding: 0.6em; background: #f6f6f6; border: 1px solid #ddd;
             overflow-x: auto; font-size: 0.85em; white-space: pre; }
mark { background: #ffd54f; }
"""


def _highlighted(source: str, spans: list[tuple[int, int]]) -> str:
    """``source``, HTML-escaped, with each span inside ``<mark>``."""
    if not spans:
        return html.escape(source)
    slices = np.array(spans, dtype=int).T
    return highlight_overlap(source, slices, "<mark>", "</mark>", escape_html=True)[0]


def similarity_html(pairs: list[SimilarPair], lab: str,
                    threshold: float = DEFAULT_THRESHOLD) -> str:
    """A self-contained HTML page (no scripts, no external files): one ``<section>`` per
    exercise (sorted by id, headed by an ``<h2>`` of the id), its pairs by score (highest
    first), each pair's two cells side by side with the matched regions in ``<mark>``.  Every
    label and source is escaped: a cell is untrusted student text.

    Used in: ``cnnlab grade`` (``similarity.html``).
    """
    esc = html.escape
    title = f"Lab {lab}: similar exercise cells"
    parts = ["<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
             f"<title>{esc(title)}</title><style>{_STYLE}</style></head><body>",
             f"<h1>{esc(title)}</h1>",
             f"<p>Cells compared by winnowed fingerprints (k={K}, window={WINDOW}) with the "
             f"lab's starter code subtracted; score = share of the smaller cell's fingerprints "
             f"found in the other.  Threshold: {threshold:.0%}.  A similar pair is a reason to "
             f"look, not a verdict.</p>"]
    if not pairs:
        parts.append(f'<p class="none">No pair of cells reached the threshold '
                     f"({threshold:.0%}).</p>")
    by_exercise: dict[str, list[SimilarPair]] = {}
    for pair in pairs:
        by_exercise.setdefault(pair.exercise, []).append(pair)
    for ex in sorted(by_exercise):
        parts.append(f'<section id="{esc(ex)}"><h2>{esc(ex)}</h2>')
        for pair in sorted(by_exercise[ex], key=lambda p: (-p.score, p.left, p.right)):
            parts.append(
                f'<div class="pair"><h3><span class="left-label">{esc(pair.left)}</span> and '
                f'<span class="right-label">{esc(pair.right)}</span>: '
                f'<span class="score">{pair.score:.0%}</span></h3><div class="cells">'
                f'<pre class="left">{_highlighted(pair.left_source, pair.left_spans)}</pre>'
                f'<pre class="right">{_highlighted(pair.right_source, pair.right_spans)}</pre>'
                f"</div></div>")
        parts.append("</section>")
    parts.append("</body></html>\n")
    return "\n".join(parts)


def write_similarity_html(pairs: list[SimilarPair], path, lab: str,
                          threshold: float = DEFAULT_THRESHOLD) -> Path:
    """Write :func:`similarity_html` to ``path`` (whole or not at all) and return the path.

    Used in: ``cnnlab grade``.
    """
    path = Path(path)
    write_atomic(path, similarity_html(pairs, lab, threshold))
    return path
