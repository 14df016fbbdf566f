"""The arrays `clue-select` reads: `.npy` (memory-mapped) or `.pt` (one tensor), never a pickle.

Each error is an :class:`InputError` naming the flag the file was given for.
A `.npy` file is checked to be one before numpy reads it (an `.npz` archive or
a pickle saved under a `.npy` name gets a message saying what it is), and
big-endian `.npy` data is converted to native byte order as it is read, so it
gives the same picks as the native file.

:func:`fingerprint` summarises a file cheaply (shape, dtype, size in bytes and
a digest of its header and of a few evenly spaced rows), so that the ranks of
a sharded run can check they read the same files without reading them whole.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Union

import numpy as np
import torch

_FLOAT_DTYPES = (np.float16, np.float32, np.float64)
_NPY_MAGIC = b"\x93NUMPY"
_ZIP_MAGIC = b"PK\x03\x04"
#: Rows read into a fingerprint, evenly spaced, first and last included.
FINGERPRINT_ROWS = 16

Saved = Union[np.ndarray, torch.Tensor]  # a numpy memmap, or a memory-mapped tensor


class InputError(ValueError):
    """A file that cannot be read as the argument it was given for."""


def open_saved(path: Path, flag: str) -> Saved:
    """A lazily sliceable array of `path`: a numpy memmap (.npy) or a memory-mapped tensor (.pt)."""
    if not path.is_file():
        what = "not a regular file" if path.exists() else "no such file"  # a FIFO would block the read
        raise InputError(f"{flag}: {what}: {path}")
    suffix = path.suffix.lower()
    if suffix not in (".npy", ".pt"):
        raise InputError(f"{flag}: {path} must be a .npy or .pt file")
    try:
        if suffix == ".npy":
            _check_npy_magic(path, flag)
            return np.load(path, mmap_mode="r", allow_pickle=False)
        data = torch.load(path, map_location="cpu", mmap=True, weights_only=True)
    except InputError:
        raise
    except Exception as error:
        raise InputError(f"{flag}: cannot read {path}: {error}") from error
    if not isinstance(data, torch.Tensor):
        raise InputError(f"{flag}: {path} must hold one tensor, got {type(data).__name__}")
    return data


def _check_npy_magic(path: Path, flag: str) -> None:
    with open(path, "rb") as handle:
        start = handle.read(len(_NPY_MAGIC))
    if start == _NPY_MAGIC:
        return
    if start.startswith(_ZIP_MAGIC):
        what = "an .npz archive (np.savez), not one array: save the array with np.save"
    elif start[:1] == b"\x80":
        what = "a pickle, which is never loaded: save the array with np.save"
    else:
        what = "not a .npy file (it does not start with numpy's magic string)"
    raise InputError(f"{flag}: {path} is {what}")


def native(array: np.ndarray) -> np.ndarray:
    """`array` in memory and in native byte order (torch holds no other)."""
    if not array.dtype.isnative:
        return array.astype(array.dtype.newbyteorder("="))
    return np.array(array)


def float_rows(array: Saved, start: int, stop: int, flag: str) -> torch.Tensor:
    """Rows [start, stop) of a float array as a tensor, reading only those rows."""
    if isinstance(array, np.ndarray):
        if array.dtype.type not in _FLOAT_DTYPES:
            raise InputError(f"{flag}: must hold float16/32/64 values, got {array.dtype}")
        return torch.from_numpy(native(array[start:stop]))
    if not array.is_floating_point():
        raise InputError(f"{flag}: must hold floating-point values, got {array.dtype}")
    return array[start:stop]


def whole(array: Saved) -> torch.Tensor:
    """All of a (small) array, in memory."""
    return torch.from_numpy(native(array)) if isinstance(array, np.ndarray) else array.clone()


def fingerprint(path: Path, array: Saved) -> dict:
    """Shape, dtype, bytes and a digest of the header and FINGERPRINT_ROWS rows: reads a few pages, not the file."""
    rows = array.shape[0] if array.ndim else 0
    sampled = sorted({i * (rows - 1) // (FINGERPRINT_ROWS - 1) for i in range(FINGERPRINT_ROWS)}) if rows else []
    digest = hashlib.sha1()
    if isinstance(array, np.ndarray):
        with open(path, "rb") as handle:
            digest.update(handle.read(getattr(array, "offset", 0)))  # the .npy header
        dtype = array.dtype.name
        if not array.dtype.isnative:
            dtype += " big-endian" if array.dtype.byteorder == ">" else " little-endian"
        for i in sampled:
            digest.update(np.ascontiguousarray(array[i]).tobytes())
    else:
        dtype = str(array.dtype).removeprefix("torch.")
        for i in sampled:
            digest.update(array[i].contiguous().reshape(-1).view(torch.uint8).numpy().tobytes())
    return dict(shape=tuple(array.shape), dtype=dtype, bytes=os.stat(path).st_size, digest=digest.hexdigest()[:12])


def describe(view: dict) -> str:
    shape = " x ".join(map(str, view["shape"])) or "scalar"
    return f"{shape} {view['dtype']}, {view['bytes']:,} bytes, digest {view['digest']}"
