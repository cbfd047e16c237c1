"""``cnnlab release OUT/``: what students receive, with no answer in it.

The instructor's repository holds everything: ``solutions/``, the grader and, in
:mod:`cnnlab.grading.hidden`, every exercise's points and hidden cases.  A release is the folder
a course publishes as the students' repository (as otter-grader's ``student/`` or nbgrader's
``release/``):

- ``labs/``: every lab built afresh from ``solutions/`` (:func:`cnnlab.notebooks.build_lab`:
  solution blocks become ``# YOUR CODE HERE``, outputs cleared);
- ``images/``: the figures the labs show;
- ``cnnlab/``: the helper package **without** ``cnnlab/grading`` (the grader, the points, the
  hidden cases, this module); the public cases ``cnnlab.check`` runs, the references
  checkpoints put in place and every module the labs use stay;
- ``pyproject.toml`` (builds the student wheel: ``pip wheel OUT/``), ``requirements.txt``
  (what the labs need, without the grader's and the tests' packages), a ``Makefile``
  (``make lab``) and a student ``README.md`` (install, open, check, submit).

What a release cannot hide: cnnlab's own implementations (``cnnlab.ops.correlate2d``...) are
the library the labs teach with, so they ship; a student who pastes or retypes one is caught by
the static flags and the similarity report, not by the release.  Used in: ``cnnlab release``.
"""

from __future__ import annotations

import re
import shutil
import tomllib
from pathlib import Path

import nbformat

__all__ = ["release", "STUDENT_README", "NOT_FOR_STUDENTS"]

#: Requirements the students' release leaves out: the tests' and the grader's packages.
NOT_FOR_STUDENTS = ("pytest", "hypothesis", "playwright", "copydetect")

#: What of ``cnnlab/`` never ships (relative to the package folder).
_WITHHELD = ("grading",)

STUDENT_README = """\
# {title}

The labs of this course: Jupyter notebooks on convolutional neural networks, the `cnnlab`
helper package they use, and the self-checks you run as you go.

## Install and open

You need Python 3.10–3.12.

```bash
make lab          # creates .venv, installs, opens JupyterLab on labs/
```

or by hand:

```bash
python3 -m venv .venv
.venv/bin/pip install -r requirements.txt
.venv/bin/pip install --no-deps -e .
.venv/bin/jupyter lab labs/
```

## Work through a lab

Open `labs/NN_*.ipynb`, read, and fill in the cells that say `# YOUR CODE HERE`. After each
exercise a cell like

```python
cnnlab.check("01.correlate2d", correlate2d)
```

runs the exercise's public tests and says pass / fail with a hint (never the solution). The
grader runs more tests, hidden ones, on inputs drawn when the lab is graded: an answer that
only fits the public tests does not pass them. If you are stuck, the `cnnlab.checkpoint(...)`
cell after an exercise puts a reference answer in place so the rest of the lab runs; your grade
uses your own answer. *Run All* always runs to the end: an exercise you have not done yet says
`TODO`.

## Submit

Hand in the notebook file itself (`labs/NN_name.ipynb`), saved. The grader reads only your
exercise cells (the cells tagged `exercise:NN.name`: keep them, and keep your answer in them),
runs them in a fresh kernel with the rest of the lab, and compares every exercise cell with
cnnlab's own code and with the other submissions: write your own.

## What is here

- `labs/`: the eleven labs.
- `cnnlab/`: the helper package (`pip install .` builds it as a wheel).
- `images/`: the figures the labs show.
"""

_MAKEFILE = """\
# `make lab`: creates .venv if missing, installs, opens JupyterLab on labs/.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PORT ?= 8888
LAB_ARGS ?=
ALLOW_ROOT := $(if $(filter 0,$(shell id -u)),--allow-root)

.PHONY: install lab

install: $(STAMP)

$(STAMP): requirements.txt pyproject.toml
\ttest -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
\t$(BIN)/python -m pip install --quiet --upgrade pip
\t$(BIN)/python -m pip install --quiet -r requirements.txt
\t$(BIN)/python -m pip install --quiet --no-deps -e .
\ttouch $(STAMP)

lab: $(STAMP)
\t$(BIN)/jupyter lab --ServerApp.root_dir="$(CURDIR)" \\
\t  --FileContentsManager.preferred_dir=labs --LabApp.default_url="/lab/tree/labs" \\
\t  --port=$(PORT) $(ALLOW_ROOT) $(LAB_ARGS)
"""


def _requirement_name(line: str) -> str:
    return re.split(r"[\s<>=!~\[;#]", line.strip(), maxsplit=1)[0].lower()


def _student_requirements(text: str) -> str:
    """``requirements.txt`` without :data:`NOT_FOR_STUDENTS` (and the comments about them)."""
    kept, comments = [], []
    for line in text.splitlines():
        if line.lstrip().startswith("#") or not line.strip():
            comments.append(line)
            continue
        if _requirement_name(line) in NOT_FOR_STUDENTS:
            comments = []
            continue
        kept += comments + [line]
        comments = []
    return "\n".join(kept) + "\n"


_STUDENT_DESCRIPTION = ("cnnlab for students: the labs' helper package and self-checks (no "
                        "grader, no hidden tests)")


def _student_pyproject(kit_pyproject: Path) -> str:
    """The students' ``pyproject.toml``: the kit's name, version, dependencies and ``cnnlab``
    command, packaging ``cnnlab*`` (the release has no ``cnnlab/grading`` to package)."""
    meta = tomllib.loads(kit_pyproject.read_text())["project"]
    dependencies = "".join(f'    "{d}",\n' for d in meta.get("dependencies", [])
                           if _requirement_name(d) not in NOT_FOR_STUDENTS)
    return f"""\
[build-system]
requires = ["setuptools>=77"]
build-backend = "setuptools.build_meta"

[project]
name = "{meta['name']}"
version = "{meta['version']}"
description = "{_STUDENT_DESCRIPTION}"
readme = "README.md"
requires-python = "{meta.get('requires-python', '>=3.10')}"
license = "{meta.get('license', 'MIT')}"
dependencies = [
{dependencies}]

[project.scripts]
cnnlab = "cnnlab.cli:main"

[tool.setuptools.packages.find]
include = ["cnnlab*"]
exclude = ["cnnlab.grading*"]
"""


def _ignore_package(folder: str, names: list[str]) -> list[str]:
    """What :func:`shutil.copytree` leaves out of ``cnnlab/``: the grader, caches."""
    leave = [n for n in names if n == "__pycache__" or n.endswith((".pyc", ".pyo"))]
    if Path(folder).name == "cnnlab":
        leave += [n for n in names if n in _WITHHELD]
    return leave


def release(out, kit=None, title: str = "CNN labs") -> dict[str, list[str]]:
    """Write the students' release of the kit at ``kit`` (default: the kit this cnnlab is in)
    into ``out``, a folder that must not exist yet or be empty (nothing is overwritten).

    Returns ``{"labs": [...], "images": [...], "package": [...], "files": [...]}``: the paths
    written, relative to ``out``.  Raises ValueError (with the fix) when ``out`` holds files or
    lies inside the kit's ``cnnlab/``, ``solutions/`` or ``labs/``, and FileNotFoundError when
    the kit has no solutions.  Used in: ``cnnlab release``.
    """
    from cnnlab.notebooks import build_lab, find_kit_root

    kit = Path(kit).resolve() if kit else find_kit_root(Path(__file__).resolve().parent)
    out = Path(out).resolve()
    solutions = sorted((kit / "solutions").glob("[0-9][0-9]_*.ipynb"))
    if not solutions:
        raise FileNotFoundError(f"no solutions/NN_name.ipynb in {kit}: release from the "
                                "instructor's repository")
    for inside in ("cnnlab", "solutions", "labs"):
        if out == kit / inside or (kit / inside) in out.parents:
            raise ValueError(f"{out} lies inside the kit's {inside}/; give a folder outside it, "
                             "e.g. ../release")
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise ValueError(f"{out} already exists and is not an empty folder; give a new folder "
                         "(a release never overwrites anything)")
    out.mkdir(parents=True, exist_ok=True)
    written: dict[str, list[str]] = {"labs": [], "images": [], "package": [], "files": []}

    (out / "labs").mkdir()
    for source in solutions:
        lab = build_lab(nbformat.read(source, as_version=4), source.name)
        nbformat.write(lab, out / "labs" / source.name)
        written["labs"].append(f"labs/{source.name}")

    if (kit / "images").is_dir():
        shutil.copytree(kit / "images", out / "images",
                        ignore=shutil.ignore_patterns(".*", "__pycache__"))
        written["images"] = sorted(str(p.relative_to(out)) for p in (out / "images").rglob("*")
                                   if p.is_file())

    shutil.copytree(kit / "cnnlab", out / "cnnlab", ignore=_ignore_package)
    written["package"] = sorted(str(p.relative_to(out)) for p in (out / "cnnlab").rglob("*")
                                if p.is_file())

    files = {
        "README.md": STUDENT_README.format(title=title),
        "requirements.txt": _student_requirements((kit / "requirements.txt").read_text()),
        "pyproject.toml": _student_pyproject(kit / "pyproject.toml"),
        "Makefile": _MAKEFILE,
        ".gitignore": ".venv/\n__pycache__/\n*.egg-info/\n.ipynb_checkpoints/\nbuild/\n",
    }
    for name, text in files.items():
        (out / name).write_text(text)
        written["files"].append(name)
    return written
