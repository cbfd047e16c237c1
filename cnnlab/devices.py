"""Devices and backends: which Keras backend runs, which GPUs it sees, whether float16 helps.

The lectures' *Training on GPU* slides: convolutions are matrix products that a GPU runs in
parallel, and tensor cores (compute capability 7.0 and up) run them in float16 about 2-3x
faster.  This module is the one place cnnlab asks the backend about devices:

* :func:`keras_backend` and :func:`for_backend`: the backend switch.  Code that must differ
  per backend (a gradient tape, a compiled kernel) gives ``for_backend`` one entry per backend
  instead of writing its own ``if keras.backend.backend() == "jax"`` chain.
* :func:`gpu_probe` / :func:`has_gpu`: the one GPU probe (TensorFlow, JAX or PyTorch).
* :func:`device_report`: the probe as a report, with whether mixed precision will help.

Keras is imported only when a function runs, so ``cnnlab.profiles`` stays light.

Used in: no lab notebook directly; Lab 09 calls ``cnnlab.transfer.device_report`` (this
module's, re-exported) and every lab's ``parameters`` cell ``cnnlab.profile()``, which asks
:func:`has_gpu`
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path

__all__ = [
    "BACKENDS",
    "DeviceReport",
    "device_report",
    "for_backend",
    "gpu_probe",
    "has_gpu",
    "keras_backend",
]

BACKENDS = ("tensorflow", "jax", "torch")
_MISSING = object()


def keras_backend() -> str:
    """The name of the active Keras backend (``"tensorflow"``, ``"jax"``, ``"torch"``...).

    Used in: no lab notebook directly (cnnlab's backend-specific code asks it)
    """
    import keras

    return keras.backend.backend()


def for_backend(choices, *, default=_MISSING, what="this"):
    """The entry of ``choices`` (a dict: backend name -> anything) for the active backend.

    The one backend switch of cnnlab: ``for_backend({"tensorflow": tape_gradient, "jax":
    jax_gradient}, what="gradients")(x)``.  A backend missing from ``choices`` gives
    ``default`` when one is given, else a ``ValueError`` that names ``what``, the backend and
    the ones that have it (set ``KERAS_BACKEND`` to one of them).

    Used in: no lab notebook directly (cnnlab's backend-specific code calls it)
    """
    if not isinstance(choices, dict):
        raise TypeError(f"choices must be a dict of backend name -> value, got "
                        f"{type(choices).__name__}")
    backend = keras_backend()
    if backend in choices:
        return choices[backend]
    if default is not _MISSING:
        return default
    raise ValueError(f"{what} is not available on the {backend!r} backend; set KERAS_BACKEND "
                     f"to {' or '.join(sorted(choices))}")


@dataclass
class DeviceReport:
    """What :func:`device_report` returns: backend, devices and whether float16 will help."""

    backend: str
    devices: list = field(default_factory=list)
    gpus: list = field(default_factory=list)
    mixed_precision_helps: bool = False
    reason: str = ""
    notes: list = field(default_factory=list)

    def __str__(self) -> str:
        lines = [f"Keras backend: {self.backend}",
                 "devices: " + (", ".join(self.devices) or "none found"),
                 f"mixed precision helps: {'yes' if self.mixed_precision_helps else 'no'} "
                 f"({self.reason})"]
        lines += [f"note: {note}" for note in self.notes]
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        from html import escape

        items = "".join(f"<li>{escape(line)}</li>" for line in str(self).splitlines())
        return f"<ul>{items}</ul>"


def _gpus_tensorflow():
    import tensorflow as tf

    devices, gpus = [], []
    for device in tf.config.list_physical_devices():
        devices.append(f"{device.device_type}:{device.name.rsplit(':', 1)[-1]}")
        if device.device_type == "GPU":
            details = tf.config.experimental.get_device_details(device)
            capability = details.get("compute_capability")
            gpus.append((details.get("device_name", device.name), capability))
    return devices, gpus, []


def _gpus_jax():
    import jax

    devices, gpus, tpus = [], [], []
    for device in jax.devices():
        devices.append(f"{device.platform}:{device.id} {getattr(device, 'device_kind', '')}"
                       .strip())
        if device.platform == "gpu":
            capability = getattr(device, "compute_capability", None)
            if isinstance(capability, str):
                capability = tuple(int(part) for part in capability.split(".")[:2])
            gpus.append((getattr(device, "device_kind", "GPU"), capability))
        elif device.platform == "tpu":
            tpus.append(device)
    return devices, gpus, tpus


def _gpus_torch():
    import torch

    devices, gpus = ["cpu"], []
    if torch.cuda.is_available():
        for index in range(torch.cuda.device_count()):
            name = torch.cuda.get_device_name(index)
            devices.append(f"cuda:{index} {name}")
            gpus.append((name, tuple(torch.cuda.get_device_capability(index))))
    return devices, gpus, []


def _nvidia_driver_present() -> bool:
    return Path("/proc/driver/nvidia/version").exists() or shutil.which("nvidia-smi") is not None


def gpu_probe():
    """``(devices, gpus, tpus)`` the active backend sees: device names, ``(name, compute
    capability)`` per GPU, and TPU devices (JAX only); empty lists on another backend.

    Used in: no lab notebook directly (:func:`device_report` and :func:`has_gpu` read it)
    """
    probe = for_backend({"tensorflow": _gpus_tensorflow, "jax": _gpus_jax, "torch": _gpus_torch},
                        default=None)
    return probe() if probe is not None else ([], [], [])


def has_gpu() -> bool:
    """Whether the active Keras backend sees a GPU (``False``, not an error, without a
    backend or when the probe fails).

    Used in: every lab's ``parameters`` cell, through ``cnnlab.profiles.profile``
    """
    try:
        return bool(gpu_probe()[1])
    except Exception:  # noqa: BLE001 - no backend (or a broken one) means no GPU
        return False


def device_report():
    """Which backend and devices Keras will use, and whether mixed precision will help.

    Returns a :class:`DeviceReport` (text, HTML; fields ``backend``, ``devices``, ``gpus``
    as (name, compute capability), ``mixed_precision_helps`` with its ``reason``, ``notes``).
    float16 pays off on GPUs with tensor cores (compute capability 7.0 or more: about 2-3x
    for convolutions); on a CPU it is emulated and slower.  cnnlab never hides a GPU: the
    notes say when ``CUDA_VISIBLE_DEVICES`` hides one, or when an NVIDIA driver is installed
    but the backend sees no GPU (a CPU-only build), with the fix.

    Used in: labs/09_transfer_learning
    """
    backend = keras_backend()
    notes = []
    devices, gpus, tpus = gpu_probe()
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    hidden = visible is not None and visible.strip() in ("", "-1")
    if hidden:
        notes.append(f"CUDA_VISIBLE_DEVICES={visible!r} hides every GPU from this process; "
                     "unset it to use them")
    if not gpus and not hidden and _nvidia_driver_present():
        fix = {"tensorflow": "pip install 'tensorflow[and-cuda]'",
               "jax": "pip install 'jax[cuda12]'", "torch": "a CUDA build of torch"}
        notes.append(f"an NVIDIA driver is installed but {backend} sees no GPU: this is a "
                     f"CPU-only build; install {fix.get(backend, 'a GPU build')}")
    if tpus:
        helps, reason = True, "TPU: use mixed_bfloat16"
    elif gpus:
        capabilities = [cap for _, cap in gpus if cap]
        best = max(capabilities) if capabilities else None
        if best is not None and tuple(best) >= (7, 0):
            helps = True
            reason = (f"{gpus[0][0]} has tensor cores (compute capability "
                      f"{best[0]}.{best[1]}): float16 convolutions run about 2-3x faster")
        else:
            helps = False
            reason = ("GPU without tensor cores (compute capability "
                      f"{'unknown' if best is None else f'{best[0]}.{best[1]}'} < 7.0)")
    else:
        helps, reason = False, "no GPU: float16 on a CPU is emulated and slower; keep float32"
    return DeviceReport(backend, devices, [f"{name} ({'.'.join(map(str, cap)) if cap else '?'})"
                                           for name, cap in gpus], helps, reason, notes)


