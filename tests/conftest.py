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
