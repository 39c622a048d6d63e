"""Device choice: auto follows what the job sees; a GPU job on a CPU says so; an impossible device is an error."""

from __future__ import annotations

import logging

import pytest
import torch
import yaml

from conftest import ROOT
from dualspace.config import config_problems
from dualspace.runtime import pick_device


def test_auto_follows_cuda_availability(monkeypatch, caplog):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with caplog.at_level(logging.WARNING, logger="dualspace.runtime"):
        assert pick_device("auto") == torch.device("cpu")
        assert caplog.records == []  # a CPU job on a CPU: nothing to say
        assert pick_device("auto", expect_gpu=True) == torch.device("cpu")
    assert "asked for a GPU" in caplog.text and "compute.gpu" in caplog.text
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert pick_device("auto") == torch.device("cuda")


def test_explicit_cuda_without_a_gpu_is_an_error(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(RuntimeError, match=r"compute\.device"):
        pick_device("cuda:1")
    assert pick_device("cpu", expect_gpu=True) == torch.device("cpu")


def test_device_key_is_checked_by_the_schema():
    config = yaml.safe_load((ROOT / "config" / "config.yaml").read_text())
    config["digits"]["compute"]["device"] = "gpu0"
    problems = config_problems(config, ROOT / "workflow" / "schemas" / "config.schema.yaml")
    assert any("digits.compute.device" in p for p in problems), problems
