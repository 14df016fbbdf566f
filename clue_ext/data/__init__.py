"""Data for Active DA experiments: offline embedded benchmarks and real-data loaders.

Use ``load_shift(source, target, ...)`` for any registered shift and
``available_shifts()`` for the valid names; ``load_folder_shift(source_dir,
target_dir)`` for two image folders of your own. Every dataset it returns yields ``(image, label)``, exposes
``.targets`` (int64 labels in dataset order) and ``.with_mode("train"|"eval")``;
in-memory ones (embedded benchmarks, digit sets) also expose ``.images``.
"""

from .cache import default_cache_dir
from .folders import load_folder_shift
from .image_list_dataset import ImageListDataset
from .registry import FAMILIES, ShiftEntry, available_shifts, load_shift, shift_entries
from .shift import DomainShift
from .splits import stratified_split
from .tensor_dataset import DATASET_MODES, TensorImageDataset

__all__ = [
    "DATASET_MODES",
    "FAMILIES",
    "DomainShift",
    "ImageListDataset",
    "ShiftEntry",
    "TensorImageDataset",
    "available_shifts",
    "default_cache_dir",
    "load_folder_shift",
    "load_shift",
    "shift_entries",
    "stratified_split",
]
