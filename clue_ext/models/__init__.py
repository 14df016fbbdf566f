"""Networks for Active DA: every model returns ``(logits, embedding)``.

Common interface: ``features(x) -> embedding``, ``classifier(embedding) -> logits``,
``forward(x) -> (logits, embedding)`` and the attribute ``embedding_dim``.
"""

from .lenet import LeNet
from .pretrained import PretrainedWeightsNotFoundError
from .registry import available_models, build_model, is_known_model
from .resnet import ResNet34Classifier
from .torchvision_classifier import TorchvisionClassifier

__all__ = [
    "LeNet",
    "PretrainedWeightsNotFoundError",
    "ResNet34Classifier",
    "TorchvisionClassifier",
    "available_models",
    "build_model",
    "is_known_model",
]
