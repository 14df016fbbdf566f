"""The single entry point: every known shift by name, and ``load_shift``."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Optional

from .cache import PathLike
from .embedded import RECIPES, load_embedded_shift
from .real.layout import resolve_data_root
from .real.shifts import DIGIT_PAIRS, DOMAINNET_PAIRS, OFFICE31_PAIRS
from .real.shifts import load_digit_shift, load_domainnet_shift, load_office31_shift
from .shift import DomainShift

logger = logging.getLogger(__name__)

FAMILIES = ("embedded", "digits", "office31", "domainnet")


@dataclass(frozen=True)
class ShiftEntry:
    """One loadable shift: its domains and the family of loader that builds it."""

    source: str
    target: str
    family: str

    @property
    def name(self) -> str:
        return f"{self.source}->{self.target}"


_ENTRIES: tuple[ShiftEntry, ...] = (
    tuple(ShiftEntry(r.source, r.target, "embedded") for r in RECIPES.values())
    + tuple(ShiftEntry(s, t, "digits") for s, t in DIGIT_PAIRS)
    + tuple(ShiftEntry(s, t, "office31") for s, t in OFFICE31_PAIRS)
    + tuple(ShiftEntry(s, t, "domainnet") for s, t in DOMAINNET_PAIRS)
)
_BY_PAIR = {(entry.source, entry.target): entry for entry in _ENTRIES}


def shift_entries(family: Optional[str] = None) -> list[ShiftEntry]:
    """All known shifts, optionally only those of one ``family`` (see ``FAMILIES``)."""
    if family is not None and family not in FAMILIES:
        raise ValueError(f"family must be one of {FAMILIES}, got {family!r}")
    return [entry for entry in _ENTRIES if family is None or entry.family == family]


def available_shifts(family: Optional[str] = None) -> list[tuple[str, str]]:
    """The valid ``(source, target)`` pairs, embedded ones first.

    Args:
        family: only this family: ``"embedded"`` (no download, built from package
            data), ``"digits"``, ``"office31"`` or ``"domainnet"``.
    """
    return [(entry.source, entry.target) for entry in shift_entries(family)]


def _lookup(source: str, target: Optional[str]) -> ShiftEntry:
    if target is None:
        if not isinstance(source, str) or "->" not in source:
            raise ValueError(f"give source and target, or one 'source->target' string; got {source!r}")
        source, target = source.split("->", 1)
    key = (str(source).strip().lower(), str(target).strip().lower())
    if key not in _BY_PAIR:
        valid = ", ".join(entry.name for entry in _ENTRIES)
        raise ValueError(f"unknown shift {key[0]}->{key[1]}; valid shifts: {valid}")
    return _BY_PAIR[key]


def load_shift(
    source: str,
    target: Optional[str] = None,
    *,
    data_root: Optional[PathLike] = None,
    download: bool = False,
    seed: int = 0,
    cache_dir: Optional[PathLike] = None,
    verify_checksums: bool = True,
) -> DomainShift:
    """Load a domain shift by its source and target domain names.

    Args:
        source: source domain (e.g. ``"synth"``), or a whole ``"synth->mnist"``
            with ``target`` left out. Case-insensitive.
        target: target domain (e.g. ``"mnist"``).
        data_root: folder holding the real data sets (see ``real.layout``);
            defaults to ``$CLUE_EXT_DATA``. Unused by embedded shifts.
        download: let torchvision download SVHN / MNIST / USPS into ``data_root``
            when missing. Nothing is ever downloaded otherwise; Office-31 and
            DomainNet cannot be downloaded automatically.
        seed: selects the embedded benchmark's random build and split, the
            Office-31 pool/test split and the DomainNet pool (90% of the
            target train list). The digit sets ignore it.
        cache_dir: where embedded benchmarks are cached; defaults to
            ``$CLUE_EXT_CACHE`` or ``~/.cache/clue_ext``.
        verify_checksums: check SVHN / USPS files against torchvision's md5.

    Returns:
        A ``DomainShift``.

    Raises:
        ValueError: unknown shift (the message lists the valid ones), no data
            root for a real shift, or invalid data files.
        FileNotFoundError: real data missing; the message says where it must go
            and how to get it.
    """
    entry = _lookup(source, target)
    if entry.family == "embedded":
        shift = load_embedded_shift(entry.name, seed=seed, cache_dir=cache_dir)
    else:
        root = resolve_data_root(data_root, entry.name)
        if entry.family == "digits":
            shift = load_digit_shift(entry.source, entry.target, root, download, verify_checksums)
        elif entry.family == "office31":
            shift = load_office31_shift(entry.source, entry.target, root, seed=seed)
        else:
            shift = load_domainnet_shift(entry.source, entry.target, root, seed=seed)
    logger.info("loaded %s", shift.summary())
    return shift
