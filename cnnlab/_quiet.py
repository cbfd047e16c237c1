"""Keep TensorFlow's start-up lines out of notebooks and test logs, without turning oneDNN off.

TensorFlow >= 2.20 logs through absl before absl is initialised, so ``TF_CPP_MIN_LOG_LEVEL`` no
longer hides lines such as "oneDNN custom operations are on" or "Could not find cuda drivers".
They are written straight to file descriptor 2, where ipykernel forwards them into cells.  This
module installs an import hook that sends fd 2 to /dev/null while ``tensorflow`` is first imported
(and its devices listed), then restores it: Python exceptions still propagate, and everything
TensorFlow logs afterwards is shown as usual.  Set ``CNNLAB_TF_LOG=1`` to see the lines.
"""

from __future__ import annotations

import contextlib
import importlib.abc
import importlib.util
import os
import sys

__all__ = ["install", "quiet_fd2"]


@contextlib.contextmanager
def quiet_fd2():
    """Send file descriptor 2 to /dev/null inside the block (a no-op if that fails)."""
    try:
        sys.stderr.flush()
        saved = os.dup(2)
        null = os.open(os.devnull, os.O_WRONLY)
    except OSError:
        yield
        return
    try:
        os.dup2(null, 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(null)


class _QuietLoader(importlib.abc.Loader):
    def __init__(self, loader):
        self._loader = loader

    def create_module(self, spec):
        return self._loader.create_module(spec)

    def exec_module(self, module):
        with quiet_fd2():
            self._loader.exec_module(module)
            try:  # device discovery prints the "cuInit" lines: do it now, quietly
                module.config.list_physical_devices()
            except Exception:  # noqa: BLE001 - never break the import for a log line
                pass


class _QuietFinder(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name != "tensorflow":
            return None
        sys.meta_path.remove(self)  # one shot: find the real spec, then step aside
        spec = importlib.util.find_spec(name)
        if spec is not None and spec.loader is not None:
            spec.loader = _QuietLoader(spec.loader)
        return spec


def install() -> None:
    """Install the one-shot hook unless TensorFlow is imported already or CNNLAB_TF_LOG=1."""
    if os.environ.get("CNNLAB_TF_LOG") == "1" or "tensorflow" in sys.modules:
        return
    if not any(isinstance(f, _QuietFinder) for f in sys.meta_path):
        sys.meta_path.insert(0, _QuietFinder())
