"""Single-source notebooks: labs are generated from solutions, and notebooks are run headless.

A solution notebook ``solutions/NN_name.ipynb`` is the only hand-edited notebook.  An exercise is
a code cell tagged ``exercise:NN.name`` whose solution lines sit between ``### BEGIN SOLUTION``
and ``### END SOLUTION``.  :func:`build_lab` replaces each block with ``# YOUR CODE HERE`` and
``raise NotImplementedError()`` (same indentation), clears outputs, drops cells tagged
``solution-only`` and locks every non-exercise cell (not editable, not deletable).

:func:`run_notebooks` executes notebooks with nbclient, one kernel per notebook, and stops at the
first error with the cell and its traceback (``cnnlab run``, ``make solutions``).

Used in: ``cnnlab build-labs``, ``cnnlab run``, ``cnnlab grade`` and the notebook tests.
"""

from __future__ import annotations

import copy
import os
import re
import sys
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import nbformat

__all__ = [
    "BEGIN",
    "END",
    "STUB",
    "exercise_id",
    "strip_solutions",
    "build_lab",
    "build_labs",
    "find_kit_root",
    "RunResult",
    "run_notebook",
    "run_notebooks",
]

BEGIN = "### BEGIN SOLUTION"
END = "### END SOLUTION"
STUB = ("# YOUR CODE HERE", "raise NotImplementedError()")
EXERCISE_TAG = re.compile(r"^exercise:(\d{2}\.[A-Za-z_][A-Za-z0-9_]*)$")


def exercise_id(cell) -> str | None:
    """The exercise id of a cell tagged ``exercise:NN.name``, or None.

    Any other shape (a cell or metadata that is not a mapping, tags that are not a list, a tag
    that is not a string: a submitted notebook may hold anything) means no exercise.
    """
    metadata = cell.get("metadata") if isinstance(cell, Mapping) else None
    tags = metadata.get("tags") if isinstance(metadata, Mapping) else None
    if not isinstance(tags, (list, tuple)):
        return None
    for tag in tags:
        match = EXERCISE_TAG.match(tag) if isinstance(tag, str) else None
        if match:
            return match.group(1)
    return None


def strip_solutions(source: str, where: str = "cell") -> str:
    """Replace every BEGIN/END SOLUTION block of ``source`` by the stub, keeping indentation.

    A block inside a function body becomes ``# YOUR CODE HERE`` + ``raise NotImplementedError()``
    (the function exists; calling it says "not done yet").  A block at the top level of a cell
    (a *value* exercise, whose variable starts as ``name = None`` above the markers) becomes
    ``# YOUR CODE HERE`` alone, so Run All on an untouched lab never stops there: the check says
    TODO, the checkpoint puts the reference in place, the grader scores ``not_attempted``.
    """
    out, inside, indent = [], False, ""
    for number, line in enumerate(source.splitlines(), start=1):
        stripped = line.strip()
        if stripped == BEGIN:
            if inside:
                raise ValueError(f"{where}, line {number}: {BEGIN} inside another solution block")
            inside, indent = True, line[: len(line) - len(line.lstrip())]
            out.extend(indent + stub for stub in (STUB if indent else STUB[:1]))
        elif stripped == END:
            if not inside:
                raise ValueError(f"{where}, line {number}: {END} without a {BEGIN} before it")
            inside = False
        elif not inside:
            out.append(line)
    if inside:
        raise ValueError(f"{where}: {BEGIN} is never closed by {END}")
    return "\n".join(out)


def _check_run_all_rule(source: str, where: str) -> None:
    """Raise if a stripped exercise cell would stop Run All on the untouched lab.

    Every ``raise NotImplementedError()`` left by :func:`strip_solutions` must sit inside a
    function body (so only calling the function raises), and a cell whose top level lost its
    solution must first bind the exercise's variable to ``None``.
    """
    import ast

    try:
        tree = ast.parse(source)
    except SyntaxError as exc:
        raise ValueError(f"{where}: the lab version of this cell is not valid Python "
                         f"(line {exc.lineno}: {exc.msg})") from None
    inside_function = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            inside_function.update(id(child) for child in ast.walk(node))
    for node in ast.walk(tree):
        if (isinstance(node, ast.Raise) and id(node) not in inside_function
                and "NotImplementedError" in ast.unparse(node)):
            raise ValueError(
                f"{where}, line {node.lineno}: a solution block outside a function would raise "
                "NotImplementedError at Run All; put value exercises at the top level of the "
                "cell (`name = None` above the markers) or inside a function")
    if STUB[1] not in source and not any(
            isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant)
            and node.value.value is None for node in tree.body):
        raise ValueError(
            f"{where}: a value exercise must start with `name = None` above {BEGIN}, so the "
            "untouched lab's check says TODO instead of raising NameError")


def build_lab(solution: nbformat.NotebookNode, name: str = "notebook") -> nbformat.NotebookNode:
    """The student's lab generated from a solution notebook (see the module docstring)."""
    lab = copy.deepcopy(solution)
    cells = []
    seen = set()
    for index, cell in enumerate(lab.cells):
        tags = cell.metadata.get("tags", []) or []
        if "solution-only" in tags:
            continue
        where = f"{name}, cell {index}"
        ex_id = exercise_id(cell)
        has_markers = BEGIN in cell.source or END in cell.source
        if ex_id:
            if ex_id in seen:
                raise ValueError(f"{where}: exercise {ex_id} is tagged on two cells")
            seen.add(ex_id)
            if cell.cell_type != "code" or not has_markers:
                raise ValueError(f"{where}: exercise {ex_id} needs a code cell with {BEGIN}/{END}")
            cell.source = strip_solutions(cell.source, where)
            _check_run_all_rule(cell.source, where)
        elif has_markers:
            raise ValueError(f"{where}: solution markers outside a cell tagged exercise:NN.name")
        if cell.cell_type == "code":
            cell.outputs = []
            cell.execution_count = None
            cell.metadata.pop("execution", None)
        cell.metadata["editable"] = bool(ex_id)
        cell.metadata["deletable"] = False
        cells.append(cell)
    lab.cells = cells
    lab.metadata["cnnlab"] = {"generated_from": f"solutions/{name}", "do_not_edit": True}
    return lab


def find_kit_root(start: str | os.PathLike | None = None) -> Path:
    """The kit's root folder (the one holding ``solutions/``), searched from ``start`` upwards."""
    here = Path(start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if (folder / "solutions").is_dir():
            return folder
    package_root = Path(__file__).resolve().parent.parent
    if (package_root / "solutions").is_dir():
        return package_root
    raise FileNotFoundError(
        f"no solutions/ folder in {here} or above it; run from the kit's folder or pass --solutions"
    )


def _dumps(nb) -> str:
    return nbformat.writes(nb, version=4) + "\n"


def build_labs(solutions_dir, labs_dir, check: bool = False) -> list[str]:
    """Write ``labs_dir/NN_name.ipynb`` for each solution; return the names that changed.

    With ``check=True`` nothing is written: the names that differ (or are missing, or are stale
    labs with no solution) are returned, so ``cnnlab build-labs --check`` can fail on them.
    """
    solutions_dir, labs_dir = Path(solutions_dir), Path(labs_dir)
    sources = sorted(solutions_dir.glob("[0-9][0-9]_*.ipynb"))
    if not sources:
        raise FileNotFoundError(f"no NN_name.ipynb notebooks in {solutions_dir}")
    changed = []
    for path in sources:
        solution = nbformat.read(path, as_version=4)
        text = _dumps(build_lab(solution, path.name))
        target = labs_dir / path.name
        if not target.exists() or target.read_text(encoding="utf-8") != text:
            changed.append(path.name)
            if not check:
                labs_dir.mkdir(parents=True, exist_ok=True)
                target.write_text(text, encoding="utf-8")
    expected = {p.name for p in sources}
    for stale in sorted(labs_dir.glob("[0-9][0-9]_*.ipynb")):
        if stale.name not in expected:
            changed.append(stale.name)
            if not check:
                stale.unlink()
    return changed


# --------------------------------------------------------------------------------------------
# Running notebooks


@dataclass
class RunResult:
    """The outcome of one notebook run."""

    notebook: str
    status: str  # "ok" or "failed"
    seconds: float
    error: str = ""
    cell_index: int | None = None


def run_notebook(path, profile: str = "smoke", timeout: int = 600, output=None) -> RunResult:
    """Execute one notebook top to bottom in a fresh kernel (cwd = the notebook's folder)."""
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError, CellTimeoutError, DeadKernelError

    path = Path(path)
    nb = nbformat.read(path, as_version=4)
    start = time.perf_counter()
    current = {"index": None}
    with tempfile.TemporaryDirectory(prefix="cnnlab-run-") as scratch:
        client = NotebookClient(nb, kernel_name="python3", timeout=timeout,
                                resources={"metadata": {"path": str(path.parent)}})
        client.on_cell_start = lambda cell, cell_index: current.update(index=cell_index)
        # The kernel's own stdout/stderr (ipykernel's start-up warnings) go to a log, shown
        # only if the kernel dies; what cells print reaches the notebook as usual.
        log = Path(scratch) / "kernel.log"
        try:
            with log.open("w") as stream:
                client.execute(env={**os.environ, "CNNLAB_PROFILE": profile},
                               stdout=stream, stderr=stream)
            result = RunResult(path.name, "ok", time.perf_counter() - start)
        except (CellExecutionError, CellTimeoutError, DeadKernelError) as exc:
            error = str(exc)
            if isinstance(exc, DeadKernelError):
                error += "\nkernel log (last lines):\n" + "\n".join(
                    log.read_text(errors="replace").splitlines()[-20:])
            result = RunResult(path.name, "failed", time.perf_counter() - start, error,
                               current["index"])
    if output is not None:
        Path(output).mkdir(parents=True, exist_ok=True)
        nbformat.write(nb, Path(output) / path.name)
    return result


def run_notebooks(paths, profile: str = "smoke", timeout: int = 600, output=None, stream=None):
    """Run notebooks in order, stop at the first failure, print a table; return the results."""
    stream = stream or sys.stdout
    results = []
    for path in paths:
        print(f"running {Path(path).name} ({profile} profile) ...", file=stream, flush=True)
        result = run_notebook(path, profile=profile, timeout=timeout, output=output)
        results.append(result)
        if result.status != "ok":
            print(f"\n{result.notebook} failed in cell {result.cell_index}:\n{result.error}",
                  file=stream)
            break
    width = max(len(r.notebook) for r in results)
    print(f"\n{'notebook':<{width}}  status  seconds", file=stream)
    for r in results:
        print(f"{r.notebook:<{width}}  {r.status:<6}  {r.seconds:7.1f}", file=stream)
    return results
