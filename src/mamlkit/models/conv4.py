"""Conv4, the few-shot image classifier of Finn et al. (2017, section 5.2), after Vinyals et al. (2016).

Four blocks of 3×3 convolution (padding 1), BatchNorm and ReLU, then a linear layer to
one logit per class. Omniglot: 64 filters and stride-2 convolutions (28 → 14 → 7 → 4 → 2).
miniImageNet: 32 filters, stride-1 convolutions each followed by 2×2 max-pooling
(84 → 42 → 21 → 10 → 5). The final feature map is flattened; Finn et al.'s Omniglot code
averages its 2×2 positions instead, which a linear head over the flattened map includes.

BatchNorm keeps no running statistics: MAML normalises with the statistics of the
batch at hand, at training and at test time (``batch_norm="transductive"``).
"""

from __future__ import annotations

from torch import nn


def conv4(in_channels: int, n_classes: int, *, image_size: int, filters: int = 64,
          max_pool: bool = False) -> nn.Sequential:
    """The four-block convnet, as an ``nn.Sequential`` of standard layers.

    Args:
        in_channels: image channels C (1 for Omniglot, 3 for miniImageNet).
        n_classes: logits per image (N of N-way tasks).
        image_size: height and width of the square input images, in pixels.
        filters: channels of every convolution (64 Omniglot, 32 miniImageNet).
        max_pool: stride-1 convolutions each followed by 2×2 max-pooling
            (miniImageNet); False for stride-2 convolutions (Omniglot).

    Returns:
        A module mapping images (n, C, image_size, image_size) to logits (n, n_classes).

    Raises:
        ValueError: a size below 1, or images below 16 pixels a side with ``max_pool``
            (four 2×2 poolings would leave nothing).

    Example:
        >>> import torch
        >>> model = conv4(1, 5, image_size=28)
        >>> model(torch.zeros(3, 1, 28, 28)).shape
        torch.Size([3, 5])
    """
    for name, value in (("in_channels", in_channels), ("n_classes", n_classes),
                        ("image_size", image_size), ("filters", filters)):
        if value < 1:
            raise ValueError(f"conv4 {name} must be >= 1; got {value}")
    if max_pool and image_size < 16:
        raise ValueError(f"conv4 with max_pool needs images of at least 16 pixels a side; got {image_size}")
    size = image_size
    layers: list[nn.Module] = []
    for block in range(4):
        layers += [nn.Conv2d(in_channels if block == 0 else filters, filters, 3, stride=1 if max_pool else 2,
                             padding=1),
                   nn.BatchNorm2d(filters, track_running_stats=False),
                   nn.ReLU()]
        if max_pool:
            layers.append(nn.MaxPool2d(2))
        size = size // 2 if max_pool else (size - 1) // 2 + 1
    layers += [nn.Flatten(), nn.Linear(filters * size * size, n_classes)]
    return nn.Sequential(*layers)
