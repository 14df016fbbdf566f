"""Locating and reading ImageNet weights for torchvision backbones offline.

Resolution order for a backbone that asked for pretrained weights:

1. an explicit ``weights_path`` (a state dict saved with ``torch.save``),
2. the file torchvision would have downloaded, if it is already in the torch
   hub cache (``$TORCH_HOME/hub/checkpoints/<file name of the weights URL>``),
3. a download through torchvision, only when the caller allows it.

If none of these yields weights we raise :class:`PretrainedWeightsNotFoundError`
whose message lists every way to provide them, rather than silently training
from a random init (the paper's DomainNet/Office numbers assume ImageNet init).
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Optional, Union
from urllib.parse import urlparse

import torch

logger = logging.getLogger(__name__)

PathLike = Union[str, os.PathLike]


class PretrainedWeightsNotFoundError(FileNotFoundError):
    """Pretrained weights were requested but no source for them is available."""


def hub_cache_path(url: str) -> Path:
    """Where ``torch.hub`` stores (or would store) the file downloaded from ``url``."""
    file_name = os.path.basename(urlparse(url).path)
    return Path(torch.hub.get_dir()) / "checkpoints" / file_name


def read_state_dict(path: PathLike) -> dict[str, torch.Tensor]:
    """Load a state dict from ``path`` without unpickling arbitrary objects.

    Accepts a bare state dict or a checkpoint wrapping it under ``"state_dict"``
    or ``"model"``; a ``"module."`` prefix left by DataParallel is stripped.
    """
    path = Path(path)
    if not path.is_file():
        raise PretrainedWeightsNotFoundError(f"weights_path {str(path)!r} does not exist or is not a file")
    state = torch.load(path, map_location="cpu", weights_only=True)
    for wrapper_key in ("state_dict", "model"):
        if isinstance(state, dict) and isinstance(state.get(wrapper_key), dict):
            state = state[wrapper_key]
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ValueError(f"weights_path {str(path)!r} does not contain a state dict of tensors")
    return {key.removeprefix("module."): value for key, value in state.items()}


def resolve_torchvision_weights(
    weights_enum, *, weights_path: Optional[PathLike], allow_download: bool, model_name: str
) -> dict[str, torch.Tensor]:
    """Return the state dict for ``weights_enum`` following the module's resolution order."""
    if weights_path is not None:
        logger.info("Loading %s weights from %s", model_name, weights_path)
        return read_state_dict(weights_path)

    cached = hub_cache_path(weights_enum.url)
    if cached.is_file():
        logger.info("Loading %s weights from the torch hub cache: %s", model_name, cached)
        return read_state_dict(cached)

    if allow_download:
        logger.info("Downloading %s weights from %s", model_name, weights_enum.url)
        try:
            return weights_enum.get_state_dict(progress=True, check_hash=True)
        except Exception as error:  # network errors come in many types; all mean "unavailable"
            raise PretrainedWeightsNotFoundError(
                _how_to_provide(model_name, weights_enum.url, cached)
                + f"\nThe download attempt failed with: {error!r}"
            ) from error

    raise PretrainedWeightsNotFoundError(_how_to_provide(model_name, weights_enum.url, cached))


def _how_to_provide(model_name: str, url: str, cached: Path) -> str:
    return (
        f"Pretrained ImageNet weights for {model_name} were requested but none are available.\n"
        f"Provide them in one of these ways:\n"
        f"  1. pass weights_path=<file> pointing to a state dict (e.g. {os.path.basename(cached)} "
        f"downloaded from {url});\n"
        f"  2. place that file in the torch hub cache at {cached} "
        f"(set TORCH_HOME to move the cache);\n"
        f"  3. pass allow_download=True on a machine with internet access;\n"
        f"or pass pretrained=False to start from a random initialisation."
    )
