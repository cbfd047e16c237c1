"""`make lab` serves the repository with labs/ opened first, and every notebook image loads.

The server root is the repository, so a notebook's ``../images/...`` resolves from ``labs/`` and
from ``solutions/``; ``DIR`` chooses the folder opened first (``make lab DIR=solutions`` for
instructors) and ``LAB_ARGS`` adds JupyterLab arguments without dropping ``--allow-root``.
"""

import json
import os
import posixpath
import re
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import pytest
from tests.conftest import ROOT

STAMP = ROOT / ".venv" / ".installed"
NOTEBOOKS = sorted(ROOT.glob("labs/[0-9][0-9]_*.ipynb")) + sorted(
    ROOT.glob("solutions/[0-9][0-9]_*.ipynb"))
# Markdown images: ![alt](src "title") and <img src="...">.
IMAGE = re.compile(r"!\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+[\"'][^)]*)?\)"
                   r"|<img\b[^>]*?\bsrc\s*=\s*[\"']([^\"']+)[\"']", re.IGNORECASE)
needs_install = pytest.mark.skipif(not STAMP.exists(), reason="needs `make install`")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _markdown_images(notebook: Path) -> list[str]:
    """Each image source in the notebook's markdown cells (attachments excluded)."""
    cells = json.loads(notebook.read_text())["cells"]
    sources = []
    for cell in cells:
        if cell["cell_type"] == "markdown":
            text = "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]
            sources += [a or b for a, b in IMAGE.findall(text)]
    return [s for s in sources if not s.startswith("attachment:")]


def _make(*args: str) -> subprocess.CompletedProcess:
    # -o: never reinstall the venv from a test.
    return subprocess.run(["make", "--no-print-directory", "-o", ".venv/.installed", *args],
                          cwd=ROOT, capture_output=True, text=True, timeout=60,
                          stdin=subprocess.DEVNULL)


def test_image_pattern_finds_markdown_and_html_images():
    text = "![a](../images/x.gif) and <img src='../images/y.png' width=3> ![b](<z.svg> \"t\")"
    cell = {"cell_type": "markdown", "source": text}
    assert [a or b for a, b in IMAGE.findall(cell["source"])] == [
        "../images/x.gif", "../images/y.png", "z.svg"]


@pytest.mark.slow
def test_make_lab_adds_extra_arguments_and_keeps_allow_root_as_root():
    dry = _make("-n", "lab", "DIR=solutions", "LAB_ARGS=--no-browser --ServerApp.ip=127.0.0.1")
    assert dry.returncode == 0, dry.stderr
    assert "--no-browser --ServerApp.ip=127.0.0.1" in dry.stdout
    assert '--ServerApp.root_dir="%s"' % ROOT in dry.stdout
    assert '--LabApp.default_url="/lab/tree/solutions"' in dry.stdout
    assert ("--allow-root" in dry.stdout) == (os.geteuid() == 0)


@pytest.mark.slow
def test_make_lab_refuses_a_dir_that_is_not_a_folder():
    result = _make("lab", "DIR=no_such_folder")
    assert result.returncode != 0
    assert "DIR=no_such_folder is not a folder" in result.stderr


@pytest.mark.slow
@needs_install
def test_make_lab_serves_labs_first_and_every_notebook_image():
    port, token = _free_port(), "cnnlab-test-token"
    # No --allow-root here: as root, the server starts only if the Makefile adds it.
    args = f"--no-browser --IdentityProvider.token={token} --ServerApp.ip=127.0.0.1"
    server = subprocess.Popen(["make", "lab", f"PORT={port}", f"LAB_ARGS={args}"], cwd=ROOT,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                              stdin=subprocess.DEVNULL, start_new_session=True)
    base = f"http://127.0.0.1:{port}"

    def get(path: str):
        sep = "&" if "?" in path else "?"
        return urllib.request.urlopen(f"{base}{path}{sep}token={token}", timeout=10)

    try:
        for _ in range(120):
            try:
                with get("/api/contents/labs") as response:
                    labs = {item["name"] for item in json.load(response)["content"]}
                break
            except OSError:
                assert server.poll() is None, "make lab exited early"
                time.sleep(0.5)
        else:
            pytest.fail("JupyterLab did not answer within 60 s")
        expected = {p.name for p in NOTEBOOKS if p.parent.name == "labs"}
        assert expected and expected <= labs
        with get("/api/contents/solutions") as response:  # instructors: same server
            solutions = {item["name"] for item in json.load(response)["content"]}
        assert {p.name for p in NOTEBOOKS if p.parent.name == "solutions"} <= solutions
        with get("/") as page:  # the browser lands on labs/
            assert page.status == 200 and page.url.split("?")[0].endswith("/lab/tree/labs")

        checked, problems = 0, []
        for notebook in NOTEBOOKS:
            folder = notebook.parent.name
            for source in _markdown_images(notebook):
                if urllib.parse.urlparse(source).scheme:
                    problems.append(f"{folder}/{notebook.name}: {source} needs the network")
                    continue
                path = posixpath.normpath(posixpath.join(folder, urllib.parse.unquote(source)))
                if path.startswith("../"):
                    problems.append(f"{folder}/{notebook.name}: {source} is outside the repo")
                    continue
                try:
                    with get(f"/files/{urllib.parse.quote(path)}") as response:
                        kind = response.headers.get("Content-Type", "")
                        if response.status != 200 or not kind.startswith("image/"):
                            problems.append(f"{path}: {response.status} {kind}")
                except urllib.error.HTTPError as error:
                    problems.append(f"{folder}/{notebook.name}: {source} -> {error.code}")
                checked += 1
        assert not problems, "\n".join(problems)
        print(f"{checked} notebook images answer 200 through make lab")
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)
