"""`make lab` starts JupyterLab on labs/ and the server lists the labs."""

import json
import os
import signal
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.skipif(not (ROOT / ".venv" / ".installed").exists(), reason="needs `make install`")
def test_make_lab_serves_the_labs():
    port, token = _free_port(), "cnnlab-test-token"
    args = f"--no-browser --ServerApp.token={token} --ServerApp.ip=127.0.0.1"
    if os.geteuid() == 0:
        args += " --allow-root"
    server = subprocess.Popen(["make", "lab", f"PORT={port}", f"LAB_ARGS={args}"], cwd=ROOT,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                              stdin=subprocess.DEVNULL, start_new_session=True)
    try:
        url = f"http://127.0.0.1:{port}/api/contents?token={token}"
        for _ in range(120):
            try:
                with urllib.request.urlopen(url, timeout=2) as response:
                    listing = json.load(response)
                break
            except OSError:
                assert server.poll() is None, "make lab exited early"
                time.sleep(0.5)
        else:
            pytest.fail("JupyterLab did not answer within 60 s")
        names = {item["name"] for item in listing["content"]}
        expected = {p.name for p in (ROOT / "labs").glob("[0-9][0-9]_*.ipynb")}
        assert expected and expected <= names
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/lab?token={token}") as page:
            assert page.status == 200
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)
