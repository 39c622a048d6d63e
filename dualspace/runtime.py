"""Where a stage runs: the device a config asks for, resolved on the machine the job landed on."""

from __future__ import annotations

import logging

import torch

log = logging.getLogger("dualspace.runtime")


def pick_device(name: str = "auto", expect_gpu: bool = False) -> torch.device:
    """'auto' -> cuda when a CUDA device is visible, else cpu; 'cpu', 'cuda', 'cuda:N' as given.

    `expect_gpu` (the rule asked the scheduler for a GPU) turns a CPU fallback into a warning: a
    full-scale config on the CPU runs for days, and the log should say why.
    """
    if name == "auto":
        device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    else:
        device = torch.device(name)
        if device.type == "cuda" and not torch.cuda.is_available():
            raise RuntimeError(f"device '{name}' (config <dataset>.compute.device) was asked for, but no CUDA "
                               "device is visible to this job; use 'auto' or 'cpu', or request a GPU")
    if device.type == "cpu" and expect_gpu:
        log.warning("this stage asked for a GPU (config <dataset>.compute.gpu) but none is visible: running on "
                    "the CPU, which takes 10-100x longer (docs/cluster.md has the estimates)")
    return device
