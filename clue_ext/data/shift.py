"""The object every loader returns: one source -> target domain shift."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

from torch.utils.data import Dataset


@dataclass(frozen=True)
class DomainShift:
    """Datasets and metadata of one Active DA problem.

    Every dataset yields ``(image, label)`` with ``image`` a float tensor
    ``(in_channels, image_size, image_size)``; it exposes ``.targets`` (int64,
    one label per item, dataset order) and ``.with_mode("train" | "eval")``.
    In-memory datasets (the embedded benchmarks and the digit sets) also expose
    ``.images``, the whole ``(N, C, H, W)`` tensor.

    Attributes:
        name: ``"<source>-><target>"``, e.g. ``"synth->mnist"``.
        source, target: the domain names.
        source_train: labelled source data (``train`` mode).
        target_pool: the unlabelled target pool the strategies select from; its
            ``targets`` are what the oracle reveals. Given in ``eval`` mode (no
            augmentation, as selection needs); ``with_mode("train")`` gives the
            augmented view for training on revealed labels.
        target_test: held-out target data for evaluation (``eval`` mode).
        num_classes, in_channels, image_size: what the network must accept.
        class_names: one name per label.
        embedded: True for the offline benchmarks built from package data.
        normalization: per-channel ``(mean, std)`` used to normalise the images,
            or None where a loader applies its own transform.
    """

    name: str
    source: str
    target: str
    source_train: Dataset
    target_pool: Dataset
    target_test: Dataset
    num_classes: int
    in_channels: int
    image_size: int
    class_names: tuple[str, ...]
    embedded: bool
    normalization: Optional[tuple[tuple[float, ...], tuple[float, ...]]] = field(default=None)

    def summary(self) -> str:
        """One line with the sizes, for logs."""
        return (
            f"{self.name}: source_train={len(self.source_train)} target_pool={len(self.target_pool)} "
            f"target_test={len(self.target_test)} classes={self.num_classes} "
            f"input=({self.in_channels}, {self.image_size}, {self.image_size})"
        )


def rgb_image_shift(name: str, source: str, target: str, classes, source_train: Dataset, target_pool: Dataset,
                    target_test: Optional[Dataset], image_size: int, normalization) -> DomainShift:
    """A shift of RGB images between two named domains over the class names `classes`."""
    return DomainShift(
        name=name,
        source=source,
        target=target,
        source_train=source_train,
        target_pool=target_pool,
        target_test=target_test,
        num_classes=len(classes),
        in_channels=3,
        image_size=image_size,
        class_names=tuple(classes),
        embedded=False,
        normalization=normalization,
    )
