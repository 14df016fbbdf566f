"""Name -> model builder registry used by configs and the experiment runner."""

from __future__ import annotations

from typing import Callable, Optional

from torch import nn

from .lenet import LeNet
from .pretrained import PathLike
from .resnet import ResNet34Classifier
from .torchvision_classifier import TorchvisionClassifier, torchvision_model_names


def _build_lenet(num_classes, *, in_channels, pretrained, weights_path, **kwargs) -> nn.Module:
    if pretrained or weights_path is not None:
        # No published LeNet weights exist; a source model is trained here and
        # restored with model.load_state_dict(torch.load(checkpoint)).
        raise ValueError(
            "lenet has no pretrained weights (pretrained/weights_path); build it with "
            "pretrained=False and load a trained checkpoint with model.load_state_dict"
        )
    return LeNet(num_classes=num_classes, in_channels=in_channels, **kwargs)


def _build_resnet34(num_classes, *, in_channels, pretrained, weights_path, **kwargs) -> nn.Module:
    return ResNet34Classifier(
        num_classes, in_channels, pretrained=pretrained, weights_path=weights_path, **kwargs
    )


_MODEL_BUILDERS: dict[str, Callable[..., nn.Module]] = {
    "lenet": _build_lenet,
    "resnet34": _build_resnet34,
}


def _torchvision_builder(name: str) -> Callable[..., nn.Module]:
    def build(num_classes, *, in_channels, pretrained, weights_path, **kwargs) -> nn.Module:
        return TorchvisionClassifier(
            name, num_classes, in_channels, pretrained=pretrained, weights_path=weights_path, **kwargs
        )

    return build


def available_models() -> list[str]:
    """Names accepted by :func:`build_model`: ``lenet``, ``resnet34`` (the paper's), then torchvision's."""
    return list(_MODEL_BUILDERS) + [n for n in torchvision_model_names() if n not in _MODEL_BUILDERS]


def is_known_model(name) -> bool:
    """True when ``name`` (any case) is a model :func:`build_model` can build."""
    return isinstance(name, str) and name.lower() in available_models()


def build_model(
    name: str,
    num_classes: int,
    *,
    in_channels: int = 3,
    pretrained: bool = False,
    weights_path: Optional[PathLike] = None,
    **kwargs,
) -> nn.Module:
    """Build a registered model that returns ``(logits, embedding)``.

    Every model exposes ``features(x)``, ``classifier(embedding)``,
    ``forward(x) -> (logits, embedding)`` and ``embedding_dim``.

    Args:
        name: one of :func:`available_models` (case-insensitive): ``lenet``
            (28x28 inputs), ``resnet34`` (the paper's), or a torchvision
            classification model such as ``resnet50`` or ``efficientnet_b0``
            (its last linear layer replaced, see :class:`TorchvisionClassifier`).
        num_classes: number of output classes.
        in_channels: image channels (1 or 3).
        pretrained: load ImageNet weights (not lenet).
        weights_path: explicit pretrained weights file (not lenet); implies
            ``pretrained``.
        **kwargs: model-specific options, e.g. ``dropout`` for lenet,
            ``allow_download`` for resnet34.

    Raises:
        ValueError: unknown ``name`` or invalid arguments.
        PretrainedWeightsNotFoundError: weights requested but not available.
    """
    if not is_known_model(name):
        raise ValueError(f"unknown model name {name!r}; valid names: {', '.join(available_models())}")
    builder = _MODEL_BUILDERS.get(name.lower()) or _torchvision_builder(name.lower())
    return builder(
        num_classes, in_channels=in_channels, pretrained=pretrained, weights_path=weights_path, **kwargs
    )
