"""Run profiles: ``smoke`` (laptop CPU, minutes) and ``full`` (GPU, the real sizes).

Every lab has a cell tagged ``parameters`` (the papermill convention) whose sizes come from
:func:`by_profile`, so the same notebook runs in minutes on a laptop and at full size on a GPU.

Used in: every lab's ``parameters`` cell.
"""

from __future__ import annotations

import os

__all__ = ["PROFILES", "profile", "by_profile", "has_gpu"]

PROFILES = ("smoke", "full")


def has_gpu() -> bool:
    """Whether the active Keras backend sees a GPU (no error if the backend is missing)."""
    try:
        import keras

        backend = keras.backend.backend()
        if backend == "tensorflow":
            import tensorflow as tf

            return bool(tf.config.list_physical_devices("GPU"))
        if backend == "jax":
            import jax

            return any(d.platform == "gpu" for d in jax.devices())
        if backend == "torch":
            import torch

            return bool(torch.cuda.is_available())
    except Exception:  # noqa: BLE001 - no backend means no GPU
        return False
    return False


def profile() -> str:
    """The active profile: ``$CNNLAB_PROFILE``, else ``"full"`` with a GPU and ``"smoke"`` without.

    Used in: every lab's ``parameters`` cell.
    """
    value = os.environ.get("CNNLAB_PROFILE", "").strip().lower()
    if not value:
        return "full" if has_gpu() else "smoke"
    if value not in PROFILES:
        raise ValueError(
            f"CNNLAB_PROFILE={value!r} is not a profile; set it to one of {', '.join(PROFILES)}"
        )
    return value


def by_profile(smoke: dict, full: dict, name: str | None = None) -> dict:
    """The sizes of the active profile (or of ``name``): ``smoke`` or ``full``.

    Both dicts must have the same keys, so a notebook never depends on a size that one profile
    forgot.  Used in: every lab's ``parameters`` cell.
    """
    if set(smoke) != set(full):
        missing = sorted(set(smoke) ^ set(full))
        raise ValueError(f"smoke and full profiles must define the same sizes; differ in {missing}")
    chosen = name or profile()
    if chosen not in PROFILES:
        raise ValueError(f"profile {chosen!r} is unknown; use one of {', '.join(PROFILES)}")
    return dict(smoke if chosen == "smoke" else full)
