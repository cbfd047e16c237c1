"""cnnlab._tables: the one renderer of every text and HTML table (issue 18)."""

import html.parser

import pytest

from cnnlab import _tables

HEADERS = ("layer", "params")
ROWS = [["conv1", "1,792"], ["fc", "40"]]


def test_text_columns_align_left_and_numbers_right():
    text = _tables.text_table(HEADERS, ROWS, right=(1,))
    assert text.splitlines() == [
        "layer  params",
        "-------------",
        "conv1   1,792",
        "fc         40",
    ]


def test_text_rule_spans_a_full_row_and_trailing_spaces_are_stripped():
    lines = _tables.text_table(("a", "long header"), [["wide cell", ""]]).splitlines()
    assert lines[1] == "-" * len("wide cell  long header")
    assert lines[2] == "wide cell"  # the empty last cell leaves no trailing spaces


def test_text_title_and_footer_each_sit_behind_a_rule():
    text = _tables.text_table(HEADERS, ROWS, title='Model: "m"', footer=["Params: 1,832"])
    lines = text.splitlines()
    rule = "-" * 13
    assert lines[:4] == ['Model: "m"', rule, "layer  params", rule]
    assert lines[-2:] == [rule, "Params: 1,832"]


def test_text_of_an_empty_table_is_its_header():
    assert _tables.text_table(HEADERS, []) == "layer  params\n-------------"


def test_cells_are_written_with_str():
    assert _tables.text_table(("n",), [[12]]).splitlines()[-1] == "12"


def test_a_row_with_the_wrong_number_of_cells_is_refused():
    with pytest.raises(ValueError, match="row 1 has 1 cells but the table has 2 columns"):
        _tables.text_table(HEADERS, [["a", "b"], ["c"]])


class _Cells(html.parser.HTMLParser):
    """The text and alignment of every th/td of an HTML table, as a browser reads them."""

    def __init__(self):
        super().__init__()
        self.cells, self._open = [], None

    def handle_starttag(self, tag, attrs):
        if tag in ("th", "td", "caption"):
            self._open = [tag, dict(attrs).get("style"), ""]

    def handle_data(self, data):
        if self._open is not None:
            self._open[2] += data

    def handle_endtag(self, tag):
        if self._open is not None and tag == self._open[0]:
            self.cells.append(tuple(self._open))
            self._open = None


def _parse(markup):
    parser = _Cells()
    parser.feed(markup)
    return parser.cells


def test_html_escapes_every_cell_header_and_caption():
    markup = _tables.html_table(("<b>", "a&b"), [["<script>x</script>", '"q"']],
                                caption="1 < 2")
    assert "<script>" not in markup and "<b>" not in markup
    texts = [text for _, _, text in _parse(markup)]
    assert texts == ["1 < 2", "<b>", "a&b", "<script>x</script>", '"q"']


def test_html_states_the_alignment_of_every_cell():
    cells = _parse(_tables.html_table(HEADERS, ROWS, right=(1,)))
    assert [style for _, style, _ in cells] == ["text-align:left", "text-align:right"] * 3
    assert [tag for tag, _, _ in cells] == ["th", "th", "td", "td", "td", "td"]


def test_html_has_one_row_per_row_plus_the_header_and_no_caption_unless_asked():
    markup = _tables.html_table(HEADERS, ROWS)
    assert markup.startswith("<table><thead>") and markup.endswith("</tbody></table>")
    assert markup.count("<tr>") == len(ROWS) + 1 and "<caption>" not in markup


def test_gradient_norms_of_cnnlab_train_print_through_the_shared_renderer():
    from cnnlab import train  # imports Keras: the only test here that does
    rows = [{"layer": "conv", "weight": "kernel", "shape": (3, 3, 1, 4), "norm": 0.0123456,
             "path": "conv/kernel"},
            {"layer": "dense_1", "weight": "kernel", "shape": (144, 10), "norm": 1.5,
             "path": "dense_1/kernel"}]
    norms = train.GradientNorms(rows, 0.5, "net<1>")
    assert repr(norms).splitlines()[1:] == [
        "layer    weight  shape            norm",
        "--------------------------------------",
        "conv     kernel  (3, 3, 1, 4)  0.01235",
        "dense_1  kernel  (144, 10)         1.5",
    ]
    markup = norms._repr_html_()
    assert "net&lt;1&gt;" in markup and markup.count("<tr>") == 3
