"""Feature networks phi: a ResNet-18 for images and a small 1-D CNN for series, both classifiers
whose penultimate layer is the feature space."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class ResNet18Features(nn.Module):
    """torchvision ResNet-18 on images in [-1,1]: resized to `size`, grey repeated to RGB, ImageNet-normalised.

    `features` is the 512-d global-average-pooled penultimate layer; `forward` the class logits.
    """

    feature_dim = 512

    def __init__(self, n_classes: int, size: int = 32):
        super().__init__()
        from torchvision.models import resnet18

        self.size = size
        self.net = resnet18(weights=None, num_classes=n_classes)
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1))

    def _prepare(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[1] == 1:
            x = x.expand(-1, 3, -1, -1)
        if x.shape[-2:] != (self.size, self.size):
            x = F.interpolate(x, size=(self.size, self.size), mode="bilinear", align_corners=False)
        return ((x + 1) / 2 - self.mean) / self.std

    def features(self, x: torch.Tensor) -> torch.Tensor:
        n = self.net
        h = n.maxpool(n.relu(n.bn1(n.conv1(self._prepare(x)))))
        h = n.layer4(n.layer3(n.layer2(n.layer1(h))))
        return torch.flatten(n.avgpool(h), 1)  # (B, 512)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net.fc(self.features(x))

    def load_imagenet(self, state: dict[str, torch.Tensor]) -> None:
        """Use a torchvision ImageNet state dict as is (its 1000-way fc is kept aside; phi is the 512-d layer)."""
        fc = self.net.fc
        self.net.fc = nn.Linear(512, state["fc.weight"].shape[0])
        self.net.load_state_dict(state)
        self.net.fc = fc


class SeriesCNN(nn.Module):
    """1-D CNN for (B, C, T) series; `features` is the `feature_dim`-d pooled penultimate layer."""

    def __init__(self, in_channels: int, n_classes: int, width: int = 64, feature_dim: int = 128):
        super().__init__()
        self.feature_dim = feature_dim

        def block(cin, cout, k, stride):
            return nn.Sequential(nn.Conv1d(cin, cout, k, stride=stride, padding=k // 2), nn.BatchNorm1d(cout), nn.ReLU())

        self.body = nn.Sequential(block(in_channels, width, 7, 1), block(width, width, 5, 2),
                                  block(width, 2 * width, 5, 2), block(2 * width, feature_dim, 3, 2))
        self.fc = nn.Linear(feature_dim, n_classes)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x).mean(dim=-1)  # (B, feature_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.features(x))
