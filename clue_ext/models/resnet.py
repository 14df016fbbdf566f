"""ResNet-34 (torchvision) as an embedding network with a fresh linear classifier.

The ImageNet ``fc`` layer is dropped: ``features`` returns the 512-d globally
pooled activations (the penultimate layer CLUE clusters on) and ``classifier``
is a new ``nn.Linear(512, num_classes)``.
"""

from __future__ import annotations

from typing import Optional

import torch
import torchvision
from torch import nn

from .backbone_classifier import BackboneClassifier
from .pretrained import PathLike, resolve_torchvision_weights
from .validation import check_positive_int

_IMAGENET_CLASSIFIER_KEYS = ("fc.weight", "fc.bias")


class ResNet34Classifier(BackboneClassifier):
    """ResNet-34 returning ``(logits, embedding)`` with a 512-d embedding.

    Args:
        num_classes: number of output classes.
        in_channels: image channels. With 1 channel the first convolution is
            rebuilt; pretrained RGB kernels are summed over colour so a grey
            image gets the response its RGB copy would get.
        pretrained: load ImageNet weights into the backbone (see
            :mod:`clue_ext.models.pretrained` for where they are looked for).
        weights_path: explicit backbone weights file; implies ``pretrained``.
        allow_download: let torchvision download the weights when they are
            neither given nor cached (off by default: offline machines would
            otherwise stall on the network).
    """

    embedding_dim = 512

    def __init__(
        self,
        num_classes: int,
        in_channels: int = 3,
        *,
        pretrained: bool = False,
        weights_path: Optional[PathLike] = None,
        allow_download: bool = False,
    ):
        super().__init__()
        check_positive_int("num_classes", num_classes)
        check_positive_int("in_channels", in_channels)
        self.num_classes = num_classes
        self.in_channels = in_channels

        self.backbone = torchvision.models.resnet34(weights=None)
        self.backbone.fc = nn.Identity()
        if in_channels != 3:
            old = self.backbone.conv1
            self.backbone.conv1 = nn.Conv2d(
                in_channels, old.out_channels, old.kernel_size, old.stride, old.padding, bias=False
            )
        self.classifier = nn.Linear(self.embedding_dim, num_classes)

        if pretrained or weights_path is not None:
            state = resolve_torchvision_weights(
                torchvision.models.ResNet34_Weights.IMAGENET1K_V1,
                weights_path=weights_path,
                allow_download=allow_download,
                model_name="resnet34",
            )
            self._load_backbone_state(state)

    def _load_backbone_state(self, state: dict[str, torch.Tensor]) -> None:
        state = {k: v for k, v in state.items() if k not in _IMAGENET_CLASSIFIER_KEYS}
        conv1 = state.get("conv1.weight")
        if conv1 is not None and conv1.shape[1] == 3 and self.in_channels != 3:
            if self.in_channels != 1:
                raise ValueError(
                    f"pretrained RGB weights can initialise in_channels=1 or 3, got {self.in_channels}"
                )
            state["conv1.weight"] = conv1.sum(dim=1, keepdim=True)
        try:
            self.backbone.load_state_dict(state, strict=True)
        except RuntimeError as error:
            raise ValueError(
                f"the weights do not fit a torchvision resnet34 backbone: {error}"
            ) from error
