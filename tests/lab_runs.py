"""Each lab graded once per test session: the solution and the untouched lab, side by side.

``tests/test_labs.py`` asserts on the results, ``tests/test_lab_facts.py`` reads what the executed
notebooks printed: one execution per notebook, whoever asks first.  The whole notebook runs (demo
cells included), so Lab 01's adversarial batch in ``tests/test_grading.py``, graded as
``cnnlab grade`` does with demo cells skipped, is not one of these runs.
"""

from dataclasses import dataclass
from pathlib import Path

from tests.conftest import ROOT


@dataclass
class LabRun:
    """One grading run of a lab's solution and untouched lab, executed notebooks kept."""

    lab: str
    solution: object  # cnnlab.grading.SubmissionResult
    untouched: object
    out: Path

    def executed(self, which: str):
        """The executed notebook (outputs included) of ``"solution"`` or ``"untouched"``."""
        import nbformat

        result = getattr(self, which)
        return nbformat.read(self.out / "executed" / f"{result.submission}.ipynb", as_version=4)

    def printed(self, which: str = "solution") -> str:
        """Everything the notebook printed (see :func:`printed_text`)."""
        return printed_text(self.executed(which))


def printed_text(nb) -> str:
    """Everything an executed notebook printed (stream outputs and plain-text results).

    A cell's stream outputs are joined as Jupyter shows them, with nothing in between: the
    kernel may send one ``print`` in several messages when it is busy (``print("a", b)``
    writes "a", " " and b separately), and each becomes an output of its own.
    """
    texts = []
    for cell in nb.cells:
        for output in cell.get("outputs", []):
            if output.get("output_type") == "stream":
                texts.append(output.get("text", ""))
            else:
                texts.append("\n" + output.get("data", {}).get("text/plain", "") + "\n")
        texts.append("\n")
    return "".join(texts)


#: lab -> LabRun, filled once per session
LAB_RUNS: dict[str, LabRun] = {}


def run_lab(lab: str, out: Path) -> LabRun:
    """Grade ``solutions/`` and ``labs/`` of ``lab`` side by side (two kernels), keep both;
    the whole notebook, demo cells included: the tests read what they print."""
    from cnnlab.exercise import LABS
    from cnnlab.grading import grade

    name = f"{LABS[lab]}.ipynb"
    solution, untouched = grade(lab, [ROOT / "solutions" / name, ROOT / "labs" / name], out=out,
                                jobs=2, timeout_cell=240, timeout_notebook=900,
                                keep_executed=True, whole_notebook=True)
    LAB_RUNS[lab] = LabRun(lab, solution, untouched, out)
    return LAB_RUNS[lab]


