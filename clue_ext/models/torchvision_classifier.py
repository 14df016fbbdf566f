"""Any torchvision classification network as an embedding network with a fresh classifier.

The network's last linear layer (``fc``, ``classifier[-1]``, ``heads.head``,
``head`` ...) becomes the identity, so ``features`` returns what fed it, and a
new ``nn.Linear(embedding_dim, num_classes)`` is the classifier. ImageNet
weights come from a file or the torch hub cache, as for ResNet-34.
"""

from __future__ import annotations

import functools
from typing import Optional

import torchvision
from torch import nn

from .backbone_classifier import BackboneClassifier
from .pretrained import PathLike, resolve_torchvision_weights
from .validation import check_positive_int

# Classification models whose output is not one logits tensor (auxiliary heads
# in training mode) or whose head is convolutional: no embedding to take.
UNSUPPORTED = frozenset({"googlenet", "inception_v3", "squeezenet1_0", "squeezenet1_1"})


@functools.lru_cache(maxsize=None)
def torchvision_model_names() -> tuple[str, ...]:
    """The torchvision classification models :class:`TorchvisionClassifier` can wrap (listed once)."""
    return tuple(sorted(set(torchvision.models.list_models(module=torchvision.models)) - UNSUPPORTED))


def _last_linear(network: nn.Module) -> tuple[nn.Module, str, nn.Linear]:
    """``(parent, attribute, layer)`` of the network's final linear layer."""
    for path in ("fc", "classifier", "heads", "head"):
        module = getattr(network, path, None)
        if isinstance(module, nn.Linear):
            return network, path, module
        if isinstance(module, nn.Sequential) and len(module) and isinstance(module[-1], nn.Linear):
            return module, list(module._modules)[-1], module[-1]
    raise ValueError(f"cannot find the final linear layer of {type(network).__name__}")


class TorchvisionClassifier(BackboneClassifier):
    """A torchvision classification model returning ``(logits, embedding)``.

    Args:
        name: a name from :func:`torchvision_model_names` (e.g. ``resnet50``).
        num_classes: number of output classes.
        in_channels: must be 3 (the torchvision stems take RGB).
        pretrained: load the model's default ImageNet weights.
        weights_path: explicit weights file (a state dict of the whole
            torchvision model); implies ``pretrained``.
        allow_download: let torchvision download the weights when they are
            neither given nor cached.
    """

    def __init__(
        self,
        name: str,
        num_classes: int,
        in_channels: int = 3,
        *,
        pretrained: bool = False,
        weights_path: Optional[PathLike] = None,
        allow_download: bool = False,
    ):
        super().__init__()
        if name not in torchvision_model_names():
            raise ValueError(f"unknown torchvision model {name!r}; valid: {', '.join(torchvision_model_names())}")
        check_positive_int("num_classes", num_classes)
        if in_channels != 3:
            raise ValueError(f"{name} takes RGB images (in_channels=3), got in_channels={in_channels}")
        self.name = name
        self.num_classes = num_classes
        self.in_channels = in_channels
        self.backbone = torchvision.models.get_model(name, weights=None)
        if pretrained or weights_path is not None:
            state = resolve_torchvision_weights(
                torchvision.models.get_model_weights(name).DEFAULT,
                weights_path=weights_path,
                allow_download=allow_download,
                model_name=name,
            )
            try:
                self.backbone.load_state_dict(state, strict=True)
            except RuntimeError as error:
                raise ValueError(f"the weights do not fit a torchvision {name}: {error}") from error
        parent, attribute, last = _last_linear(self.backbone)
        self.embedding_dim = last.in_features
        setattr(parent, attribute, nn.Identity())
        self.classifier = nn.Linear(self.embedding_dim, num_classes)
