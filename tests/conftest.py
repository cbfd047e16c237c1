"""Shared test setup: quiet TensorFlow (import cnnlab first), smoke profile, kit paths."""

import os
from pathlib import Path

import cnnlab  # noqa: F401 - must come before keras/tensorflow imports
import pytest
from lab_runs import LAB_RUNS, LabRun, run_lab

os.environ.setdefault("CNNLAB_PROFILE", "smoke")

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def kit_root() -> Path:
    return ROOT


@pytest.fixture(scope="session")
def lab_run(tmp_path_factory):
    """``lab_run("02")``: that lab graded once per test session, whoever asks first."""

    def get(lab: str) -> LabRun:
        if lab not in LAB_RUNS:
            run_lab(lab, tmp_path_factory.mktemp(f"lab{lab}"))
        return LAB_RUNS[lab]

    return get


def pytest_terminal_summary(terminalreporter):
    """Print how long each lab took to execute (the README's smoke times come from here)."""
    if LAB_RUNS:
        terminalreporter.section("lab execution times (smoke profile, two kernels side by side)")
        for lab, run in sorted(LAB_RUNS.items()):
            terminalreporter.write_line(f"lab {lab}: solution {run.solution.seconds:.0f} s, "
                                        f"untouched {run.untouched.seconds:.0f} s")
