"""Browser test set-up: one JupyterLab started the README's way (`make lab`), one Chromium.

Chromium is the system one (Debian's ``chromium``, or ``$CNNLAB_CHROMIUM``), driven by the
``playwright`` package; playwright's own browser downloads are never used.  Without Chromium or
playwright the tests are skipped with a one-line reason, except under CI (``CI`` set), where
that is a failure so CI can never skip them silently.

Run alone: ``pytest tests/browser -s`` (per-lab seconds print at the end); leave out:
``pytest -m "not browser"``.

JupyterLab writes into ``labs/`` when a notebook is saved, so ``make lab`` runs in a copy of the
kit (``served_kit``: the Makefile, the requirements, ``labs/``, ``images/`` and ``solutions/``,
with the repository's ``.venv``): the repository's ``labs/`` is never written, and ``make test``
runs this test beside the rest of the suite, which grades those notebooks at the same time.  In
the copy every notebook (and any ``.ipynb_checkpoints`` the server creates) is still put back
byte for byte after each lab, so each lab starts from the committed notebook.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
import warnings
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
RESULTS = ROOT / "results" / "browser"
SKIP_CHROMIUM = "Chromium not found: sudo apt-get install chromium, or set CNNLAB_CHROMIUM=/path"
SKIP_PLAYWRIGHT = "playwright not installed: .venv/bin/pip install playwright (it uses the " \
    "system Chromium)"
# Flags that keep Chromium quiet on a machine without internet (no refused connections).
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--no-first-run", "--disable-quic",
]
# User settings for the test server only: no news prompt, no autosave (saves happen when the
# test asks for them, so labs/ is restored to exactly what it was).
LAB_SETTINGS = {
    "@jupyterlab/apputils-extension/notification.jupyterlab-settings": {
        "fetchNews": "false", "checkForUpdates": False,
    },
    "@jupyterlab/docmanager-extension/plugin.jupyterlab-settings": {"autosave": False},
}

def pytest_configure(config):
    config.addinivalue_line(
        "markers", "browser: drives JupyterLab in Chromium (tests/browser; needs chromium)"
    )


def pytest_terminal_summary(terminalreporter):
    """One line per lab, passed or failed, from the tests' ``browser_report`` user property."""
    lines = sorted(value for outcome in ("passed", "failed")
                   for report in terminalreporter.stats.get(outcome, [])
                   if getattr(report, "when", "call") == "call"
                   for key, value in getattr(report, "user_properties", [])
                   if key == "browser_report")
    if lines:
        terminalreporter.section("labs in JupyterLab (Chromium)")
        for line in lines:
            terminalreporter.write_line(line)


def _in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def _unavailable(reason: str):
    if _in_ci():
        pytest.fail(f"{reason} (CI is set, so the browser test may not be skipped)",
                    pytrace=False)
    pytest.skip(reason)


def chromium_path() -> str | None:
    """``$CNNLAB_CHROMIUM`` when set, else the first Chromium on PATH, else None."""
    configured = os.environ.get("CNNLAB_CHROMIUM")
    if configured:
        return configured if os.access(configured, os.X_OK) else None
    for name in ("chromium", "chromium-browser"):
        found = shutil.which(name)
        if found:
            return found
    return None


@pytest.fixture(scope="session")
def chromium_executable() -> str:
    path = chromium_path()
    configured = os.environ.get("CNNLAB_CHROMIUM")
    if path is None and configured:
        _unavailable(f"CNNLAB_CHROMIUM={configured} is not an executable Chromium")
    if path is None:
        _unavailable(SKIP_CHROMIUM)
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        _unavailable(SKIP_PLAYWRIGHT)
    if not (ROOT / ".venv" / ".installed").exists():
        _unavailable("needs `make install` (make lab runs JupyterLab from .venv)")
    return path


@pytest.fixture(scope="session")
def results_dir() -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    return RESULTS


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LabServer:
    """A running `make lab` and its REST API (token auth)."""

    def __init__(self, port: int, token: str, process: subprocess.Popen, log: Path):
        self.port, self.token, self.process, self.log = port, token, process, log
        self.base = f"http://127.0.0.1:{port}"

    def api(self, method: str, path: str, body=None):
        request = urllib.request.Request(
            f"{self.base}{path}", method=method,
            data=None if body is None else json.dumps(body).encode(),
            headers={"Authorization": f"token {self.token}", "Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            data = response.read()
        return json.loads(data) if data else None

    def notebook(self, path: str) -> dict:
        """The notebook as saved on disk, through /api/contents."""
        return self.api("GET", f"/api/contents/{path}?type=notebook&content=1")["content"]

    def shutdown_kernels(self):
        for session in self.api("GET", "/api/sessions"):
            self.api("DELETE", f"/api/sessions/{session['id']}")
        for kernel in self.api("GET", "/api/kernels"):
            self.api("DELETE", f"/api/kernels/{kernel['id']}")

    def wait_idle(self, since_activity: dict, timeout: float = 600, polls: int = 3) -> float:
        """Wait until every kernel is idle on ``polls`` polls in a row (0.5 s apart), after
        having been active since ``since_activity`` (kernel id -> last_activity before the
        action).  Returns the seconds waited."""
        start, calm = time.monotonic(), 0
        while time.monotonic() - start < timeout:
            assert self.process.poll() is None, f"JupyterLab exited; see {self.log}"
            kernels = self.api("GET", "/api/kernels")
            dead = [k["id"] for k in kernels if k["execution_state"] == "dead"]
            assert not dead, f"kernel died: {dead}"
            moved = any(since_activity.get(k["id"]) != k["last_activity"] for k in kernels)
            if kernels and moved and all(k["execution_state"] == "idle" for k in kernels):
                calm += 1
                if calm >= polls:
                    return time.monotonic() - start
            else:
                calm = 0
            time.sleep(0.5)
        raise AssertionError(f"the kernel was not idle within {timeout:.0f} s")

    def activity(self) -> dict:
        return {k["id"]: k["last_activity"] for k in self.api("GET", "/api/kernels")}


#: What `make lab` needs of the kit, copied for the browser test (mtimes kept, so make sees
#: the repository's .venv as up to date and never reinstalls).
SERVED = ("Makefile", "requirements.txt", "requirements-dev.txt", "pyproject.toml", "labs",
          "images", "solutions")


@pytest.fixture(scope="session")
def served_kit(chromium_executable, tmp_path_factory) -> Path:
    """A copy of the kit that `make lab` serves: JupyterLab's saves land there, not in labs/."""
    kit = tmp_path_factory.mktemp("kit")
    for name in SERVED:
        source = ROOT / name
        if source.is_dir():
            shutil.copytree(source, kit / name,
                            ignore=shutil.ignore_patterns(".ipynb_checkpoints"))
        elif source.exists():
            shutil.copy2(source, kit / name)
    (kit / ".venv").symlink_to(ROOT / ".venv", target_is_directory=True)
    stale = subprocess.run(["make", "-q", "install"], cwd=kit, capture_output=True,
                           env={k: v for k, v in os.environ.items() if k != "MAKEFLAGS"})
    if stale.returncode != 0:  # make lab would reinstall, with `pip install -e` of the copy
        _unavailable("`make install` is out of date (requirements.txt or pyproject.toml is "
                     "newer than .venv/.installed): run `make install` first")
    return kit


@pytest.fixture(scope="session")
def lab_server(served_kit, results_dir, tmp_path_factory):
    """`make lab` on a free port, the way the README starts it, with a private settings dir,
    in the copy of the kit."""
    settings = tmp_path_factory.mktemp("lab-settings")
    for name, values in LAB_SETTINGS.items():
        (settings / name).parent.mkdir(parents=True, exist_ok=True)
        (settings / name).write_text(json.dumps(values))
    # the smoke profile, as the grader runs the labs (without it, a machine without a GPU
    # would run the longer `cpu` profile a student's laptop gets)
    env = dict(os.environ, CNNLAB_PROFILE="smoke", JUPYTERLAB_SETTINGS_DIR=str(settings),
               JUPYTERLAB_WORKSPACES_DIR=str(tmp_path_factory.mktemp("lab-workspaces")))
    port, token = _free_port(), secrets.token_hex(16)
    args = f"--no-browser --IdentityProvider.token={token} --ServerApp.ip=127.0.0.1"
    log = results_dir / "server.log"
    with open(log, "wb") as out:
        process = subprocess.Popen(["make", "lab", f"PORT={port}", f"LAB_ARGS={args}"],
                                   cwd=served_kit, env=env, stdout=out, stderr=subprocess.STDOUT,
                                   stdin=subprocess.DEVNULL, start_new_session=True)
    server = LabServer(port, token, process, log)
    try:
        for _ in range(240):
            try:
                server.api("GET", "/api/status")
                break
            except (OSError, urllib.error.URLError):
                assert process.poll() is None, f"make lab exited early; see {log}"
                time.sleep(0.5)
        else:
            pytest.fail(f"JupyterLab did not answer within 120 s; see {log}")
        yield server
    finally:
        try:
            server.shutdown_kernels()
        except OSError:
            pass
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)


@pytest.fixture(scope="session")
def browser(chromium_executable, tmp_path_factory):
    """One Chromium for the whole session, with a fresh profile (--user-data-dir)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(tmp_path_factory.mktemp("chromium-profile")),
            executable_path=chromium_executable, headless=True, args=CHROMIUM_ARGS,
            viewport={"width": 1400, "height": 1000},
        )
        context.set_default_timeout(60_000)
        try:
            yield context
        finally:
            context.close()


class LabsGuard:
    """Puts ``labs/`` back byte for byte: the notebooks, and no new checkpoint files.

    A notebook is restored only when it holds what the test's own saves wrote (or is already
    untouched); if someone else rewrote it meanwhile (``cnnlab build-labs``), it is left alone.
    """

    def __init__(self, folder: Path):
        self.folder = folder
        self.snapshot = {p: p.read_bytes() for p in folder.glob("*.ipynb")}
        self.checkpoints = folder / ".ipynb_checkpoints"
        self.had_checkpoints = self.checkpoints.exists()
        self.old_checkpoints = {p: p.read_bytes() for p in self.checkpoints.glob("*")
                                if p.is_file()}
        self.saved: dict[Path, set[bytes]] = {}

    def protect(self, path: Path):
        """Snapshot a notebook that appeared after the session started."""
        if path not in self.snapshot and path.exists():
            self.snapshot[path] = path.read_bytes()

    def record_save(self, path: Path):
        self.saved.setdefault(path, set()).add(path.read_bytes())

    def restore(self, paths=None) -> list[str]:
        skipped, paths = [], list(paths or self.snapshot)
        for path in paths:
            if path not in self.snapshot:
                continue
            original = self.snapshot[path]
            current = path.read_bytes() if path.exists() else None
            if current == original:
                continue
            if current is None or current in self.saved.get(path, set()):
                path.write_bytes(original)
            else:
                skipped.append(path.name)
        if self.checkpoints.exists():
            for notebook in paths:  # the checkpoint that saving `notebook` wrote
                path = self.checkpoints / f"{notebook.stem}-checkpoint{notebook.suffix}"
                if path in self.old_checkpoints:
                    if path.read_bytes() != self.old_checkpoints[path]:
                        path.write_bytes(self.old_checkpoints[path])
                elif path.exists():
                    path.unlink()
            if not self.had_checkpoints and not any(self.checkpoints.iterdir()):
                self.checkpoints.rmdir()
        return skipped


@pytest.fixture(scope="session")
def labs_guard(served_kit):
    guard = LabsGuard(served_kit / "labs")
    yield guard
    skipped = guard.restore()
    if skipped:
        warnings.warn(f"labs/ was rewritten by someone else during the browser test (e.g. "
                      f"`cnnlab build-labs`); left as is: {skipped}", stacklevel=1)
