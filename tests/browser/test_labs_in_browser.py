"""Every lab works in a real JupyterLab, in Chromium, the way a student uses it.

For each notebook in ``labs/`` (found in the folder, so new labs are covered without a change
here): open it in its own workspace, Run All Cells, wait until the kernel is idle, save, and read
the saved notebook back through ``/api/contents``.  Then:

* no output is an error (and no traceback on stderr), and Run All reached the last cell;
* no request answered with a status >= 400 (images, scripts, API calls);
* every self-check cell (``cnnlab.check(...)``) says TODO: nothing is solved yet;
* every image of a markdown cell is loaded (``naturalWidth > 0``, scrolled into view);
* locked cells ignore typing and ``d d``; an exercise cell takes typed code;
* for each exercise ``lab_answers.py`` names (a classic one per lab, and every exercise issue 15
  added), the solution's code typed in makes its check PASS, and the wrong answer of
  ``lab_answers.py`` makes it FAIL with the hint of the failing case.

Screenshots and the saved notebook of a failing lab go to ``results/browser/``.  JupyterLab
serves a copy of the kit (``served_kit`` in conftest.py), restored byte for byte after each lab;
the repository's ``labs/`` is never written.  Run alone with ``pytest tests/browser -s``.
"""

from __future__ import annotations

import json
import re
import time
from pathlib import Path
from urllib.parse import unquote

import pytest
from cnnlab.exercise import exercise
from lab_answers import answers_for

ROOT = Path(__file__).resolve().parents[2]
LABS = sorted((ROOT / "labs").glob("[0-9][0-9]_*.ipynb"))
NOTEBOOK = ".jp-NotebookPanel:visible"
CELLS = f"{NOTEBOOK} .jp-Notebook .jp-Cell"
# Markdown images: ![alt](src "title") and <img src="...">.
IMAGE = re.compile(r"!\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+[\"'][^)]*)?\)"
                   r"|<img\b[^>]*?\bsrc\s*=\s*[\"']([^\"']+)[\"']", re.IGNORECASE)
# Requests that may fail without harm: none known today.  Add (status, url regex) with a reason.
HARMLESS: list[tuple[int, re.Pattern]] = []
ASSET_TYPES = {"document", "stylesheet", "script", "image", "font"}

pytestmark = pytest.mark.browser


def _text(cell: dict) -> str:
    return "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]


def _output_text(cell: dict) -> str:
    parts = []
    for output in cell.get("outputs", []):
        if output["output_type"] == "stream":
            parts.append(_joined(output["text"]))
        elif output["output_type"] in ("execute_result", "display_data"):
            parts.append(_joined(output.get("data", {}).get("text/plain", "")))
        elif output["output_type"] == "error":
            parts.append(f"{output['ename']}: {output['evalue']}")
    return "\n".join(parts)


def _joined(text) -> str:
    return "".join(text) if isinstance(text, list) else text


def _errors(notebook: dict) -> list[str]:
    found = []
    for index, cell in enumerate(notebook["cells"]):
        for output in cell.get("outputs", []):
            if output["output_type"] == "error":
                found.append(f"cell {index}: {output['ename']}: {output['evalue']}"[:300])
            elif (output["output_type"] == "stream" and output.get("name") == "stderr"
                  and "Traceback" in _joined(output["text"])):
                found.append(f"cell {index}: traceback on stderr")
    return found


def _image_sources(cell: dict) -> list[str]:
    return [a or b for a, b in IMAGE.findall(_text(cell))]


def _solution_source(notebook_name: str, exercise_id: str) -> str:
    """The exercise cell of the solution notebook, without the solution markers."""
    solution = json.loads((ROOT / "solutions" / notebook_name).read_text())
    for cell in solution["cells"]:
        if f"exercise:{exercise_id}" in cell.get("metadata", {}).get("tags", []):
            lines = _text(cell).splitlines()
            kept = [line for line in lines
                    if line.strip() not in ("### BEGIN SOLUTION", "### END SOLUTION")]
            return "\n".join(kept) + "\n"
    raise LookupError(f"solutions/{notebook_name} has no cell tagged exercise:{exercise_id}")


def _index(notebook: dict, predicate, what: str) -> int:
    for index, cell in enumerate(notebook["cells"]):
        if predicate(cell):
            return index
    raise LookupError(f"no {what} in the notebook")


class LabSession:
    """One lab open in one page: the UI actions a student takes, and what the server saved."""

    def __init__(self, page, server, guard, notebook: Path):
        self.page, self.server, self.guard, self.notebook = page, server, guard, notebook
        self.path = f"labs/{notebook.name}"
        self.bad_responses: list[str] = []
        self.failed_requests: list[str] = []
        self.checkpoints_made = 0
        page.on("response", self._on_response)
        page.on("requestfailed", self._on_failed)

    def _on_response(self, response):
        if response.status >= 400 and not any(
            status == response.status and pattern.search(response.url)
            for status, pattern in HARMLESS
        ):
            url = re.sub(r"token=[0-9a-f]+", "token=...", response.url)
            self.bad_responses.append(f"{response.status} {response.request.method} {url}")
        if (response.request.method == "POST"
                and unquote(response.url).split("?")[0].endswith(f"/{self.path}/checkpoints")):
            self.checkpoints_made += 1

    def _on_failed(self, request):
        failure = request.failure or ""
        if request.url.startswith(self.server.base):
            if request.resource_type in ASSET_TYPES and "ERR_ABORTED" not in failure:
                self.failed_requests.append(f"{failure} {request.resource_type} {request.url}")
        else:  # the labs must work offline: nothing may come from the internet
            self.failed_requests.append(f"{request.resource_type} from the internet "
                                        f"({failure}; the labs must work offline): {request.url}")

    def open(self):
        workspace = f"cnnlab-test-{self.notebook.stem}"
        self.page.goto(f"{self.server.base}/lab/workspaces/{workspace}/tree/{self.path}"
                       f"?reset&token={self.server.token}")
        self.page.wait_for_selector(f"{CELLS}")
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:  # the notebook's kernel is started and idle
            sessions = [s for s in self.server.api("GET", "/api/sessions")
                        if s["path"] == self.path]
            if sessions and sessions[0]["kernel"]["execution_state"] == "idle":
                break
            time.sleep(0.5)
        else:
            raise AssertionError(f"no idle kernel for {self.path} within 120 s")
        news = self.page.locator(".jp-toast-container button", has_text="No")
        if news.count():
            news.first.click()

    def menu(self, menu: str, item: str):
        self.page.get_by_role("menuitem", name=menu, exact=True).click()
        self.page.locator(".lm-Menu-content .lm-Menu-itemLabel").filter(
            has_text=re.compile(f"^{re.escape(item)}$")).click()

    def wait_idle(self, since: dict) -> float:
        """The kernel idle on three polls in a row, and no cell still queued (``[*]``)."""
        start = time.monotonic()
        self.server.wait_idle(since)
        while self.page.locator(f"{CELLS} .jp-InputPrompt", has_text="[*]").count():
            assert time.monotonic() - start < 600, "cells still queued ([*]) after 600 s"
            self.server.wait_idle({})
        return time.monotonic() - start

    def run_all(self) -> float:
        since = self.server.activity()
        self.menu("Run", "Run All Cells")
        return self.wait_idle(since)

    def save(self) -> dict:
        def is_save(response):
            return (response.request.method == "PUT"
                    and unquote(response.url).split("?")[0].endswith(f"/api/contents/{self.path}"))

        checkpoints = self.checkpoints_made
        with self.page.expect_response(is_save) as saved:
            self.page.keyboard.press("Control+s")
        assert saved.value.status == 200, f"saving answered {saved.value.status}"
        deadline = time.monotonic() + 10  # Ctrl+S then creates a checkpoint: let it land
        while self.checkpoints_made == checkpoints and time.monotonic() < deadline:
            self.page.wait_for_timeout(100)
        self.guard.record_save(self.notebook)
        return self.server.notebook(self.path)

    def cell(self, index: int):
        cell = self.page.locator(CELLS).nth(index)
        cell.scroll_into_view_if_needed()
        return cell

    def select(self, index: int):
        """Select a cell in command mode, as a click on its prompt does."""
        self.cell(index).locator(".jp-Cell-inputArea .jp-InputPrompt").click()

    def loaded_images(self, index: int, expected: int) -> list[tuple[str, int]]:
        """(src, naturalWidth) of the images of markdown cell ``index``, once scrolled into
        view and either all loaded or 15 s passed."""
        cell = self.cell(index)
        script = """([el, n]) => {
            const imgs = [...el.querySelectorAll('.jp-RenderedMarkdown img')];
            return imgs.length >= n && imgs.every(i => i.complete && i.naturalWidth > 0);
        }"""
        try:
            self.page.wait_for_function(script, arg=[cell.element_handle(), expected],
                                        timeout=15_000)
        except Exception:  # noqa: BLE001 - timed out: report what is there
            pass
        return cell.evaluate("""el => [...el.querySelectorAll('.jp-RenderedMarkdown img')]
            .map(i => [i.getAttribute('src') || '', i.naturalWidth])""")

    def type_into(self, index: int, text: str, *, replace: bool):
        cell = self.cell(index)
        markdown = "jp-MarkdownCell" in (cell.get_attribute("class") or "")
        if markdown:
            cell.dblclick()  # opens a markdown cell's editor, unless the cell is locked
        editor = cell.locator(".cm-content")
        if editor.count() and editor.first.is_visible():
            editor.first.click()
        if replace:
            self.page.keyboard.press("Control+a")
        self.page.keyboard.insert_text(text)
        self.page.keyboard.press("Escape")

    def run_cells(self, *indices: int) -> float:
        """Select each cell and press Shift+Enter, then wait for the kernel."""
        since = self.server.activity()
        for index in indices:
            self.select(index)
            self.page.keyboard.press("Shift+Enter")
        return self.wait_idle(since)


def _summary_line(stem: str, seconds: float, summary: dict, skipped: list[str]) -> str:
    get = summary.get
    return (f"{stem}: {seconds:.0f} s (Run All {get('run_all_s', 0):.0f} s); error outputs "
            f"{get('errors', '?')}; checks TODO {get('todo', '?')}/{get('checks', '?')}; "
            f"markdown images loaded {get('images', '?')}; "
            f"{', '.join(get('answers', [])) or 'answer not reached'}"
            + ("; FAILED" if get("failed") else "")
            + (f"; NOT restored (changed by someone else): {skipped}" if skipped else ""))


def _keep_evidence(page, session: LabSession, results_dir: Path) -> str:
    """Save a full-page screenshot and the saved notebook; say where, and what a dialog says."""
    stem, note = session.notebook.stem, ""
    try:
        dialog = page.locator(".jp-Dialog")
        if dialog.count() and dialog.first.is_visible():
            note = f"\nan open dialog says: {dialog.first.inner_text()[:300]!r}"
        page.screenshot(path=str(results_dir / f"{stem}.png"), full_page=True)
        saved = session.server.notebook(session.path)
        (results_dir / f"{stem}.saved.ipynb").write_text(json.dumps(saved, indent=1))
    except Exception as exc:  # noqa: BLE001 - keep the original failure
        note += f"\n(could not keep all evidence: {type(exc).__name__}: {exc})"
    folder = results_dir.relative_to(ROOT) if results_dir.is_relative_to(ROOT) else results_dir
    return f"{note}\n(screenshot and saved notebook: {folder}/{stem}.png, {stem}.saved.ipynb)"


@pytest.mark.parametrize("notebook", LABS, ids=[p.stem for p in LABS])
def test_every_lab_has_an_answer_for_the_browser_test(notebook):
    """Needs no browser: a lab without an entry (or with a stale one) fails everywhere."""
    answers = answers_for(notebook.name[:2])
    assert len({answer.exercise_id for answer in answers}) == len(answers), "an exercise twice"
    lab = json.loads(notebook.read_text())
    for answer in answers:
        assert answer.exercise_id.startswith(notebook.name[:2] + ".")
        ex = exercise(answer.exercise_id)
        _index(lab, lambda c: f"exercise:{ex.id}" in c.get("metadata", {}).get("tags", []),
               f"cell tagged exercise:{ex.id} in labs/{notebook.name}")
        _index(lab, lambda c: _text(c).lstrip().startswith(f'cnnlab.check("{ex.id}"'),
               f"check cell of {ex.id} in labs/{notebook.name}")
        assert "### BEGIN SOLUTION" not in _solution_source(notebook.name, ex.id)
        compile(answer.wrong, f"wrong answer to {ex.id}", "exec")
        assert any(case.hint for case in ex.public_cases()), f"{ex.id}: no public case has a hint"


def _run_all_problems(ran: dict, summary: dict) -> list[str]:
    """Run All on an untouched lab: no error, every cell run, every check says TODO."""
    errors = _errors(ran)
    problems = [f"error output: {e}" for e in errors]
    if not errors:
        unrun = [i for i, c in enumerate(ran["cells"])
                 if c["cell_type"] == "code" and c.get("execution_count") is None]
        problems += [f"Run All did not run cells {unrun}"] if unrun else []
    checks = [i for i, c in enumerate(ran["cells"])
              if c["cell_type"] == "code" and _text(c).lstrip().startswith("cnnlab.check(")]
    todo = [i for i in checks if "TODO" in _output_text(ran["cells"][i])]
    problems += [f"check cell {i} does not say TODO: {_output_text(ran['cells'][i])[:200]!r}"
                 for i in checks if i not in todo]
    summary.update(errors=len(errors), checks=len(checks), todo=len(todo))
    return problems


def _image_problems(session: LabSession, ran: dict, summary: dict) -> list[str]:
    """Every markdown image loaded once its cell is scrolled into view."""
    problems = []
    dom_cells = session.page.locator(CELLS).count()
    if dom_cells != len(ran["cells"]):
        problems.append(f"the page shows {dom_cells} cells, the notebook has "
                        f"{len(ran['cells'])}")
    images = {i: _image_sources(c) for i, c in enumerate(ran["cells"])
              if c["cell_type"] == "markdown" and _image_sources(c)}
    loaded = 0
    for index, sources in images.items():
        states = session.loaded_images(index, len(sources))
        good = [src for src, width in states if width > 0]
        loaded += len(good)
        if len(good) < len(sources):
            problems.append(f"markdown cell {index}: images {sources}, loaded {states}")
    summary["images"] = f"{loaded}/{sum(map(len, images.values()))}"
    return problems


def _locked_cell_problems(session: LabSession, ran: dict) -> list[str]:
    """Locked cells ignore typing and `d d`."""
    page, problems = session.page, []

    def locked(kind):
        return _index(ran, lambda c: c["cell_type"] == kind
                      and c.get("metadata", {}).get("editable") is False, f"locked {kind} cell")

    locked_cells = (locked("code"), locked("markdown"))
    for index in locked_cells:
        session.type_into(index, "typed into a locked cell", replace=False)
        session.select(index)
        page.keyboard.press("d")
        page.keyboard.press("d")
    saved = session.save()
    if [c.get("id") for c in saved["cells"]] != [c.get("id") for c in ran["cells"]]:
        problems.append("`d d` deleted a locked cell (cell ids changed)")
    else:
        for index in locked_cells:
            if _text(saved["cells"][index]) != _text(ran["cells"][index]):
                problems.append(f"locked cell {index} took typing: "
                                f"{_text(saved['cells'][index])[:120]!r}")
    return problems


def _answer_problems(session: LabSession, ran: dict, answer, correct: str,
                     summary: dict) -> list[str]:
    """The exercise takes a right answer (PASS) and a wrong one (FAIL with the case's hint)."""
    problems, exercise_id = [], answer.exercise_id
    cases = {case.name: case for case in exercise(exercise_id).public_cases()}
    exercise_cell = _index(ran, lambda c: f"exercise:{exercise_id}"
                           in c.get("metadata", {}).get("tags", []),
                           f"cell tagged exercise:{exercise_id}")
    check_cell = _index(ran, lambda c: c["cell_type"] == "code" and _text(c).lstrip()
                        .startswith(f'cnnlab.check("{exercise_id}"'),
                        f"check cell of {exercise_id}")
    session.type_into(exercise_cell, correct, replace=True)
    session.run_cells(exercise_cell, check_cell)
    solved = session.save()
    typed = _text(solved["cells"][exercise_cell])
    if typed.rstrip() != correct.rstrip():
        problems.append(f"exercise cell {exercise_cell} did not take the typed answer: "
                        f"{typed[:200]!r}")
    report = _output_text(solved["cells"][check_cell])
    if "PASS" not in report or re.search(r"\[(FAIL|TODO|ERROR)\]", report):
        problems.append(f"the solution's answer does not PASS: {report[:300]!r}")

    session.type_into(exercise_cell, answer.wrong, replace=True)
    session.run_cells(exercise_cell, check_cell)
    wrong = _output_text(session.save()["cells"][check_cell])
    failing = re.findall(r"\[FAIL\] (\S+)(.*)", wrong)
    if not failing:
        problems.append(f"the wrong answer does not FAIL: {wrong[:300]!r}")
    for name, line in failing:
        hint = cases[name].hint if name in cases else None
        if not hint or hint not in line:
            problems.append(f"the FAIL of {name} lacks its hint {hint!r}: {line[:200]!r}")
    summary.setdefault("answers", []).append(f"{exercise_id} PASS, wrong FAIL x{len(failing)}")
    return problems


@pytest.mark.parametrize("notebook", LABS, ids=[p.stem for p in LABS])
def test_lab_runs_clean_and_answers_check_in_jupyterlab(notebook, labs_guard, lab_server,
                                                          served_kit, browser, results_dir,
                                                          record_property):
    answers = answers_for(notebook.name[:2])  # fails at once when a new lab has no entry
    correct = {a.exercise_id: _solution_source(notebook.name, a.exercise_id) for a in answers}
    notebook = served_kit / "labs" / notebook.name  # the copy JupyterLab serves and saves
    start = time.monotonic()
    labs_guard.protect(notebook)
    page = browser.new_page()
    session = LabSession(page, lab_server, labs_guard, notebook)
    summary: dict = {}
    try:
        session.open()
        summary["run_all_s"] = session.run_all()
        ran = session.save()
        problems = _run_all_problems(ran, summary)
        problems += _image_problems(session, ran, summary)
        problems += _locked_cell_problems(session, ran)
        for answer in answers:
            problems += _answer_problems(session, ran, answer, correct[answer.exercise_id],
                                         summary)
        problems += [f"request answered {r}" for r in session.bad_responses]
        problems += [f"request failed: {r}" for r in session.failed_requests]
        if problems:
            raise AssertionError(f"{len(problems)} problem(s):\n  " + "\n  ".join(problems))
    except Exception as exc:
        summary["failed"] = True
        raise AssertionError(f"{notebook.stem}: {exc}{_keep_evidence(page, session, results_dir)}"
                             ) from exc
    finally:
        page.close()
        lab_server.shutdown_kernels()
        skipped = labs_guard.restore([notebook])
        line = _summary_line(notebook.stem, time.monotonic() - start, summary, skipped)
        print(line)
        record_property("browser_report", line)  # read by pytest_terminal_summary
