"""Shared test setup: quiet TensorFlow (import cnnlab first), smoke profile, kit paths, and
the session fixtures several test files share.

``ROOT`` is the kit's root folder, defined here once: a test module imports it with
``from tests.conftest import ROOT`` (pyproject's ``pythonpath = ["."]`` makes ``tests``
importable), a test function may ask for the ``kit_root`` fixture instead.

The tiers (markers declared in pyproject.toml): ``slow`` marks what takes more than a few
seconds (a lab or a batch graded, a model trained for real, kernels or a server started);
``make test-fast`` leaves it out, ``make test`` runs it.  ``jax`` marks the tests that start a
JAX subprocess: only ``make test-jax`` runs them.
"""

import gc
import os
from pathlib import Path

import cnnlab  # noqa: F401 - must come before keras/tensorflow imports
import pytest

os.environ.setdefault("CNNLAB_PROFILE", "smoke")

ROOT = Path(__file__).resolve().parent.parent


def pytest_collection_finish(session):
    """Take what collection imported (TensorFlow, Keras, every test module: about 600,000
    objects, alive until the run ends) out of the garbage collector's sight with ``gc.freeze()``,
    so each collection scans only what the tests made since: the automatic ones, and
    test_viz.py's ``gc.collect()`` after every test, which otherwise grow to seconds each as the
    run goes on.  Garbage already there is collected first."""
    gc.collect()
    gc.freeze()


@pytest.fixture(scope="session")
def kit_root() -> Path:
    return ROOT


@pytest.fixture(scope="session")
def lite0_imagenet():
    """EfficientNet-Lite0 with its packaged ImageNet weights (``pretrained.efficientnet_lite0()``),
    built once per session (a few seconds each time otherwise).  Shared: a test may predict with
    it, take gradients through it or read its layers, never train it or change its weights."""
    from cnnlab import pretrained

    return pretrained.efficientnet_lite0()


@pytest.fixture(scope="session")
def lab_run(tmp_path_factory):
    """``lab_run("02")``: that lab graded once per test session, whoever asks first."""
    # Imported here, not at the top: lab_runs imports ROOT from this module.
    from lab_runs import LAB_RUNS, LabRun, run_lab

    def get(lab: str) -> LabRun:
        if lab not in LAB_RUNS:
            run_lab(lab, tmp_path_factory.mktemp(f"lab{lab}"))
        return LAB_RUNS[lab]

    return get


def _seconds_per_file(terminalreporter) -> dict[str, float]:
    """Seconds spent in each test file: set-up, call and teardown of every test, whatever its
    outcome (a session fixture's set-up counts in the file of the test that first asked)."""
    seconds: dict[str, float] = {}
    for reports in terminalreporter.stats.values():
        for report in reports:
            duration = getattr(report, "duration", None)
            nodeid = getattr(report, "nodeid", "")
            if duration is not None and nodeid:
                path = nodeid.split("::", 1)[0]
                seconds[path] = seconds.get(path, 0.0) + duration
    return seconds


def pytest_terminal_summary(terminalreporter):
    """Print the seconds each test file took, then how long each lab took to execute here (two
    kernels side by side, so slower than the one-kernel `make solutions` run the README's times
    come from).

    The lab times travel as the tests' user properties (``record_property``), so the summary
    reads what the tests reported, not module state.
    """
    per_file = _seconds_per_file(terminalreporter)
    if per_file:
        terminalreporter.section("seconds per test file")
        for path, seconds in sorted(per_file.items(), key=lambda item: -item[1]):
            terminalreporter.write_line(f"{seconds:8.1f} s  {path}")
    times = {}
    for report in terminalreporter.stats.get("passed", []):
        for key, value in getattr(report, "user_properties", []):
            if key == "lab_seconds":
                times[value["lab"]] = value
    if times:
        terminalreporter.section("lab execution times (smoke profile, two kernels side by side)")
        for lab, value in sorted(times.items()):
            terminalreporter.write_line(f"lab {lab}: solution {value['solution']:.0f} s, "
                                        f"untouched {value['untouched']:.0f} s")
