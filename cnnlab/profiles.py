"""Run profiles: ``smoke`` (tests, seconds), ``cpu`` (a student's laptop, minutes), ``full`` (GPU).

Every lab has a cell tagged ``parameters`` (the papermill convention) whose sizes come from
:func:`by_profile`, so the same notebook runs in seconds for the tests and the grader, shows its
lesson in a few minutes on a laptop CPU, and runs at full size on a GPU:

- ``smoke`` is what the tests and the grader use: every lab top to bottom in about a minute.
- ``cpu`` is the default without a GPU: on a 2-core laptop each lab's headline results (listed in
  its opening cell) show what the lecture says, in at most 5 minutes.  A lab whose smoke sizes
  already show its lesson (arithmetic, pretrained models) gives no ``cpu`` sizes: ``cpu`` is its
  ``smoke``.
- ``full`` is the default with a GPU: the lectures' sizes.

Used in: every lab's ``parameters`` cell.
"""

from __future__ import annotations

import os

from cnnlab.devices import has_gpu  # the one GPU probe

__all__ = ["PROFILES", "profile", "by_profile", "has_gpu"]

PROFILES = ("smoke", "cpu", "full")


def profile() -> str:
    """The active profile: ``$CNNLAB_PROFILE``, else ``"full"`` with a GPU and ``"cpu"`` without.

    Used in: every lab's ``parameters`` cell.
    """
    value = os.environ.get("CNNLAB_PROFILE", "").strip().lower()
    if not value:
        return "full" if has_gpu() else "cpu"
    if value not in PROFILES:
        raise ValueError(
            f"CNNLAB_PROFILE={value!r} is not a profile; set it to one of {', '.join(PROFILES)}"
        )
    return value


def by_profile(smoke: dict, full: dict, cpu: dict | None = None, name: str | None = None) -> dict:
    """The sizes of the active profile (or of ``name``): ``smoke``, ``cpu`` or ``full``.

    ``cpu`` defaults to ``smoke`` (a lab whose smoke sizes already show its lesson on a CPU).
    All the dicts must have the same keys, so a notebook never depends on a size that one
    profile forgot.  Used in: every lab's ``parameters`` cell.
    """
    given = {"smoke": smoke, "cpu": smoke if cpu is None else cpu, "full": full}
    for other in ("cpu", "full"):
        if set(given[other]) != set(smoke):
            missing = sorted(set(smoke) ^ set(given[other]))
            raise ValueError(f"smoke and {other} profiles must define the same sizes; "
                             f"they differ in {missing}")
    chosen = name or profile()
    if chosen not in PROFILES:
        raise ValueError(f"profile {chosen!r} is unknown; use one of {', '.join(PROFILES)}")
    return dict(given[chosen])
