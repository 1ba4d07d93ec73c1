"""Model: a small convolutional network written from its parts.

Two stages of (3x3 convolution, batch norm, ReLU) x 2, each stage halving the
resolution with 2x2 max pooling (8x8 -> 4x4 -> 2x2), then global average pooling
and one linear classifier. Only the layers themselves come from PyTorch; the
architecture is spelled out here.

Why each part: 3x3 convolutions share weights across positions (a digit's stroke
looks the same anywhere); batch norm keeps activations in range so a large learning
rate trains stably; pooling buys translation tolerance and a wider receptive field;
global average pooling makes the classifier independent of the exact position.

Batch norm mixes the examples of a batch in training mode (it uses batch
statistics); in eval mode it uses running statistics and the examples are
independent again. That is why the batch-independence test runs in eval mode.

Shapes: N batch, C channels, H x W image. Logits are [N, num_classes].
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from omegaconf import MISSING
from torch import nn


class ConvBlock(nn.Module):
    """conv 3x3 (padding 1 keeps H x W) -> batch norm -> ReLU."""

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__()
        # No bias: batch norm's shift would cancel it anyway.
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size=3, padding=1, bias=False)
        self.norm = nn.BatchNorm2d(out_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.norm(self.conv(x)))


class SmallCNN(nn.Module):
    def __init__(self, in_channels: int, num_classes: int, widths: list[int], dropout: float):
        super().__init__()
        stages = []
        channels = in_channels
        for width in widths:
            stages += [ConvBlock(channels, width), ConvBlock(width, width), nn.MaxPool2d(2)]
            channels = width
        self.features = nn.Sequential(*stages)
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(channels, num_classes)
        # Kaiming init suits ReLU layers; a small classifier keeps the initial
        # logits near zero, so the loss at initialisation is about ln(num_classes).
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, nonlinearity="relu")
        nn.init.normal_(self.classifier.weight, std=0.01)
        nn.init.zeros_(self.classifier.bias)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        x = self.features(images)  # [N, C, H', W']
        x = x.mean(dim=(2, 3))  # global average pooling -> [N, C]
        return self.classifier(self.dropout(x))


@dataclass
class ModelConfig:
    """The keys of configs/model/*.yaml and their types (see configs/schema.py)."""

    widths: list[int] = MISSING
    dropout: float = MISSING


def build_model(cfg, data_spec: dict[str, int]) -> SmallCNN:
    """Build the model from ``cfg.model`` and the sizes given by ``data.spec``."""
    return SmallCNN(
        in_channels=data_spec["in_channels"],
        num_classes=data_spec["num_classes"],
        widths=list(cfg.widths),
        dropout=cfg.dropout,
    )
