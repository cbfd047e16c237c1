"""What keeps a submission's run cheap without changing what is graded (issue 16 §4).

- the kernel's exporter cell imports :mod:`cnnlab.grading.export` alone: the package's names
  (``grade`` and the rows) load on first use, so nbformat, jsonschema and ``grade.py`` stay out
  of the kernel, and ``from cnnlab.grading import grade`` is still the function whichever
  import comes first;
- the runner (one fresh process per submission) skips jsonschema's ``rfc3987_syntax`` grammar,
  and nbformat still accepts a valid notebook and refuses an invalid one.

Each check runs in a fresh interpreter: this process has imported everything already.
"""

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _fresh(code: str) -> object:
    """What ``code`` prints as JSON on its last line, run by a fresh Python with this tree first
    on the path."""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd=ROOT, env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"},
                          timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_the_exporter_import_leaves_grade_py_nbformat_and_jsonschema_out_of_the_kernel():
    loaded = _fresh(
        "import json, sys\n"
        "import cnnlab.grading.export, cnnlab.grading.hidden, cnnlab.grading.integrity\n"
        "print(json.dumps([m for m in ('cnnlab.grading.grade', 'nbformat', 'jsonschema')\n"
        "                  if m in sys.modules]))")
    assert loaded == []


def test_the_package_s_grade_is_the_function_whichever_import_comes_first():
    orders = {
        "submodule first": "m = importlib.import_module('cnnlab.grading.grade')\n"
                           "from cnnlab.grading import grade\n",
        "function first": "from cnnlab.grading import grade\n"
                          "m = importlib.import_module('cnnlab.grading.grade')\n",
        "from the submodule": "from cnnlab.grading.grade import grade\n"
                              "m = importlib.import_module('cnnlab.grading.grade')\n",
    }
    for order, imports in orders.items():
        seen = _fresh(
            "import importlib, inspect, json\n" + imports +
            "import cnnlab.grading as package\n"
            "names = {n: getattr(package, n) is getattr(m, n) for n in package.__all__}\n"
            "try:\n"
            "    package.no_such_name\n"
            "    missing = 'no error'\n"
            "except AttributeError as exc:\n"
            "    missing = str(exc)\n"
            "print(json.dumps([inspect.isfunction(grade), grade is m.grade,\n"
            "                  package.grade is m.grade, inspect.ismodule(m), names, missing]))")
        function, same, package_same, module, names, missing = seen
        assert function and same and package_same and module, order
        assert names == {n: True for n in ["grade", "prepare_submission", "default_jobs",
                                           "SubmissionResult", "ExerciseResult", "CellError"]}
        assert "no_such_name" in missing, order


def test_the_runner_skips_rfc3987_syntax_and_nbformat_still_validates():
    seen = _fresh(
        "import json, sys\n"
        "from cnnlab.grading import runner\n"
        "runner._skip_format_checkers()\n"
        "import nbformat\n"
        "good = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell('1')])\n"
        "nbformat.validate(good)\n"
        "bad = nbformat.from_dict({**good, 'cells': [{'cell_type': 'code', 'source': 1}]})\n"
        "try:\n"
        "    nbformat.validate(bad)\n"
        "    refused = False\n"
        "except nbformat.ValidationError:\n"
        "    refused = True\n"
        "print(json.dumps([refused, sys.modules.get('rfc3987_syntax') is None,\n"
        "                  'jsonschema' in sys.modules]))")
    assert seen == [True, True, True]
