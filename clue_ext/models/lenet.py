"""The LeNet variant used for SVHN -> MNIST in AADA (Su et al.) and CLUE.

Two 5x5 convolutions (20 and 50 channels) with 2x2 max-pooling, channel
dropout after the second convolution, a 500-d fully connected layer and the
authors' head: ReLU -> Dropout(0.5) -> Linear. Inputs are ``(N, C, 28, 28)``
with ``C`` = 1 (MNIST/USPS) or 3 (SVHN, MNIST-M).

Where the head's ReLU sits: ``features`` ends with it, so the embedding the
strategies cluster is the rectified 500-d vector, which is what the authors'
``with_emb`` output is in eval mode; ``classifier`` is the rest of their head,
Dropout(0.5) -> Linear. ``classifier(features(x))`` is their network exactly
(the ReLU is applied once, not twice).
"""

from __future__ import annotations

import torch
from torch import nn

from .validation import check_input_batch, check_positive_int

#: Spatial size the fully connected layer is sized for (28 -> 24 -> 12 -> 8 -> 4).
INPUT_SIZE = 28
_CONV_OUT_FEATURES = 50 * 4 * 4


class LeNet(nn.Module):
    """LeNet classifier returning ``(logits, embedding)``.

    Args:
        num_classes: number of output classes.
        in_channels: image channels, 1 or 3.
        dropout: channel-dropout probability after the second convolution.
        head_dropout: dropout probability in the classifier head, between the
            embedding and the last linear layer (0.5 in the authors' LeNet).
    """

    embedding_dim = 500

    def __init__(self, num_classes: int = 10, in_channels: int = 1, dropout: float = 0.5, head_dropout: float = 0.5):
        super().__init__()
        check_positive_int("num_classes", num_classes)
        check_positive_int("in_channels", in_channels)
        for name, value in (("dropout", dropout), ("head_dropout", head_dropout)):
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= value < 1.0:
                raise ValueError(f"{name} must be in [0, 1), got {value!r}")
        self.num_classes = num_classes
        self.in_channels = in_channels
        self.encoder = nn.Sequential(
            nn.Conv2d(in_channels, 20, kernel_size=5),
            nn.MaxPool2d(2),
            nn.ReLU(inplace=True),
            nn.Conv2d(20, 50, kernel_size=5),
            nn.Dropout2d(dropout),
            nn.MaxPool2d(2),
            nn.ReLU(inplace=True),
            nn.Flatten(),
            nn.Linear(_CONV_OUT_FEATURES, self.embedding_dim),
            nn.ReLU(inplace=True),
        )
        self.classifier = nn.Sequential(nn.Dropout(head_dropout), nn.Linear(self.embedding_dim, num_classes))

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Penultimate-layer embedding, shape ``(N, 500)``."""
        check_input_batch(x, self.in_channels, spatial=(INPUT_SIZE, INPUT_SIZE))
        return self.encoder(x)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Return ``(logits, embedding)`` of shapes ``(N, num_classes)`` and ``(N, 500)``."""
        embedding = self.features(x)
        return self.classifier(embedding), embedding
