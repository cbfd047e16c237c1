"""Shared test setup: quiet TensorFlow (import cnnlab first), smoke profile, kit paths."""

import os
from pathlib import Path

import cnnlab  # noqa: F401 - must come before keras/tensorflow imports
import pytest

os.environ.setdefault("CNNLAB_PROFILE", "smoke")

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def kit_root() -> Path:
    return ROOT


def pytest_terminal_summary(terminalreporter):
    """Print how long each lab took to execute (the README's smoke times come from here)."""
    import sys

    module = sys.modules.get("tests.test_labs") or sys.modules.get("test_labs")
    seconds = getattr(module, "LAB_SECONDS", None)
    if seconds:
        terminalreporter.section("lab execution times (smoke profile, through the grader)")
        for lab, times in sorted(seconds.items()):
            terminalreporter.write_line(
                f"lab {lab}: solution {times['solution']:.0f} s, untouched {times['untouched']:.0f} s")
