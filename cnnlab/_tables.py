"""One table renderer for every text and HTML table of the package.

The lectures teach with tables: the VGG16 "Memory and Parameters" table (``cnnlab.summary``,
Lab 05), the receptive field and the paper design of a network layer by layer
(``cnnlab.arithmetic.receptive_field`` and ``trace_shapes``, Lab 02), the gradient norms of
Lab 07 (``cnnlab.train.gradient_norms``).  Each is a list of rows of cells under a header;
this module draws them, so every table of the package aligns, rules and escapes the same way:

- ``text_table``: columns padded to their widest cell, two spaces apart, numbers
  right-aligned, a rule under the header; optionally a title above and footer lines below
  (each under a rule of its own), as ``print(model_report)`` shows them;
- ``html_table``: a ``<table>`` with ``<thead>``/``<tbody>``, every cell escaped and aligned
  explicitly (Jupyter right-aligns table cells by default), and an optional ``<caption>``.

Cells are turned into text with ``str``; formatting numbers (``f"{n:,}"``) is the caller's job.
Pure Python (``html`` from the standard library only).
"""

from __future__ import annotations

import html

__all__ = ["html_table", "text_table"]


def _texts(headers, rows):
    headers = [str(h) for h in headers]
    rows = [[str(cell) for cell in row] for row in rows]
    for number, row in enumerate(rows):
        if len(row) != len(headers):
            raise ValueError(f"row {number} has {len(row)} cells but the table has "
                             f"{len(headers)} columns ({', '.join(headers)}); give one cell "
                             "per column")
    return headers, rows


def text_table(headers, rows, right=(), title=None, footer=()) -> str:
    """The table as plain text, one line per row.

    Args:
        headers: the column names.
        rows: one sequence of cells per row, one cell per column.
        right: indices of the columns to right-align (numbers); the others are left-aligned.
        title: a line above the table, followed by a rule.
        footer: lines below the table, after a rule (totals, conventions).

    Columns are as wide as their widest cell (or header) and two spaces apart; trailing spaces
    are stripped; the rule under the header is as long as a full row.
    """
    headers, rows = _texts(headers, rows)
    right = set(right)
    widths = [max([len(h)] + [len(row[i]) for row in rows]) for i, h in enumerate(headers)]

    def line(cells):
        parts = [cell.rjust(width) if i in right else cell.ljust(width)
                 for i, (cell, width) in enumerate(zip(cells, widths))]
        return "  ".join(parts).rstrip()

    rule = "-" * len(line(["-" * width for width in widths]))
    lines = [] if title is None else [str(title), rule]
    lines += [line(headers), rule] + [line(row) for row in rows]
    footer = [str(text) for text in footer]
    if footer:
        lines += [rule] + footer
    return "\n".join(lines)


def html_table(headers, rows, right=(), caption=None) -> str:
    """The table as one HTML ``<table>`` (for ``_repr_html_``), every cell escaped.

    ``right`` lists the right-aligned columns, as for ``text_table``; every header and cell
    states its alignment.  ``caption`` (escaped too) goes in a ``<caption>``.
    """
    headers, rows = _texts(headers, rows)
    right = set(right)

    def cell(tag, i, text):
        align = "right" if i in right else "left"
        return f'<{tag} style="text-align:{align}">{html.escape(text)}</{tag}>'

    head = "".join(cell("th", i, h) for i, h in enumerate(headers))
    body = "".join("<tr>" + "".join(cell("td", i, c) for i, c in enumerate(row)) + "</tr>"
                   for row in rows)
    cap = "" if caption is None else f"<caption>{html.escape(str(caption))}</caption>"
    return f"<table>{cap}<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"
