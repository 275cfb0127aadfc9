"""The device a run trains on, and the description of the machine recorded beside its timings."""

from __future__ import annotations

import os
import platform
import sys
from typing import Any

import torch

from certsdp.errors import InputError


def resolve_device(device: str | torch.device) -> torch.device:
    """``torch.device`` for ``device``; :class:`InputError` if it is unknown or CUDA is unavailable."""
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise InputError(f"unknown device {device!r}: {exc}") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise InputError("device cuda: CUDA is not available on this machine")
    if dev.type not in ("cpu", "cuda"):
        raise InputError(f"device must be cpu or cuda, got {device!r}")
    return dev


def machine_description(device: torch.device) -> dict[str, Any]:
    """Where the run happened (recorded in the checkpoint next to the timings)."""
    info: dict[str, Any] = {
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "python": sys.version.split()[0],
        "torch": str(torch.__version__),
        "device": str(device),
    }
    if device.type == "cuda":
        info["cuda_device"] = torch.cuda.get_device_name(device)
    return info


def synchronize(device: torch.device) -> None:
    """Wait for the device (before reading a clock)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
