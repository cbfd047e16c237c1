"""Re-running a cell gives the same result (no hidden state shared between cells).

A lab's solution notebook runs top to bottom in one kernel (smoke profile), then the cells whose
results depend on models that other cells build or train run once more, in order.  What each
printed the second time must be what it printed the first time (durations in seconds left out).

- Lab 09: the digits' transfer (its body shares layers with the ResNet that the scratch runs
  retrain), the cut of Lite0 into bottom and top, your two-phase fine-tune on the faces,
  ``transfer.fine_tune``, and the pitfalls.  On the notebook before the fix, the digits'
  "transferred" row, the top's check and the fine-tuning results all changed on a re-run.
- Labs 04 and 11: the cells that train a model an earlier cell built (the MLP and the ConvNet,
  LeNet-5, the causal stack); before the fix a re-run trained the trained models further.

Every other training cell of the labs builds its model in the same cell, from a seed.
Run as a script on another notebook: ``python tests/test_rerun.py LAB NOTEBOOK``.
"""

import os
import re
import sys
import time
from copy import deepcopy

import nbformat
import pytest
from tests.conftest import ROOT

#: lab -> the cells run again, found by a line of their code (in the notebook before the fix too)
RERUN = {
    "04": {
        "MLP and ConvNet trained": 'histories = {"MLP": train(mlp), "ConvNet": train(convnet)}',
        "LeNet-5 trained": "lenet_history = lenet.fit(",
    },
    "09": {
        "digits 0-4 -> 5-9": "def restart(model, optimizer_start):",
        "Lite0 cut into bottom and top": 'cut = backbone.get_layer(P["cut"]).output',
        "two_phase_fine_tune on the faces": "two_phase_fine_tune(plain, base, (maps_fit, y_fit)",
        "transfer.fine_tune on the faces": "history = transfer.fine_tune(\n    faces_model,",
        "the pitfalls": 'runs["no recompile after unfreeze"]',
    },
    "11": {
        "the causal stack trained": "history = wavenet.fit(",
    },
}


def _solution(lab):
    from cnnlab.exercise import LABS

    return ROOT / "solutions" / f"{LABS[lab]}.ipynb"


def _printed(cell) -> str:
    text = "".join(o.get("text", "") for o in cell.get("outputs", [])
                   if o.get("output_type") == "stream" and o.get("name") == "stdout")
    # TensorFlow's log (a retracing warning) is no result of the cell's
    text = "".join(line for line in text.splitlines(keepends=True)
                   if not line.startswith(("WARNING:tensorflow", "WARNING:absl")))
    return re.sub(r"\b\d+(\.\d+)? s\b", "N s", text)   # durations differ from run to run


def rerun_outputs(lab, path) -> dict:
    """``{cell: (printed the first time, printed the second time)}`` of the cells in
    ``RERUN[lab]`` that ``path`` has, after running the whole notebook once."""
    from nbclient import NotebookClient

    nb = nbformat.read(path, as_version=4)
    chosen = {name: next((i for i, c in enumerate(nb.cells)
                          if c.cell_type == "code" and marker in c.source), None)
              for name, marker in RERUN[lab].items()}
    client = NotebookClient(nb, kernel_name="python3", timeout=600,
                            resources={"metadata": {"path": str(ROOT / "solutions")}})
    env = {**os.environ, "CNNLAB_PROFILE": "smoke"}
    with client.setup_kernel(env=env):
        for index, cell in enumerate(nb.cells):
            if cell.cell_type == "code":
                client.execute_cell(cell, index)
        first = {name: _printed(nb.cells[i]) for name, i in chosen.items() if i is not None}
        second = {}
        for name, index in chosen.items():
            if index is not None:
                again = deepcopy(nb.cells[index])
                client.execute_cell(again, index)
                second[name] = _printed(again)
    return {name: (first[name], second[name]) for name in first}


@pytest.mark.slow
@pytest.mark.parametrize("lab", sorted(RERUN))
def test_cells_print_the_same_when_run_again(lab):
    outputs = rerun_outputs(lab, _solution(lab))
    assert set(outputs) == set(RERUN[lab]), f"cells not found: {set(RERUN[lab]) - set(outputs)}"
    for name, (first, second) in outputs.items():
        assert first.strip(), f"{name}: printed nothing"
        assert first == second, (f"{name} printed something else when run again:\n{first}"
                                 f"\n---\n{second}")


if __name__ == "__main__":
    start = time.perf_counter()
    changed = {name: texts for name, texts in rerun_outputs(sys.argv[1], sys.argv[2]).items()
               if texts[0] != texts[1]}
    for name, (first, second) in changed.items():
        print(f"== {name}, first:\n{first}\n== run again:\n{second}")
    print(f"changed on a re-run: {list(changed) or 'none'} ({time.perf_counter() - start:.0f} s)")
