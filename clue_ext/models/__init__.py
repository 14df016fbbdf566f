"""Networks for Active DA: every model returns ``(logits, embedding)``.

Common interface: ``features(x) -> embedding``, ``classifier(embedding) -> logits``,
``forward(x) -> (logits, embedding)`` and the attribute ``embedding_dim``.
"""

from .lenet import LeNet
from .pretrained import PretrainedWeightsNotFoundError
from .registry import available_models, build_model
from .resnet import ResNet34Classifier

__all__ = [
    "LeNet",
    "PretrainedWeightsNotFoundError",
    "ResNet34Classifier",
    "available_models",
    "build_model",
]
