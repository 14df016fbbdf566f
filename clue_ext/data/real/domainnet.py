"""DomainNet from its image folders and official split lists.

Files under ``<root>/domainnet``: ``<domain>/<class>/*.jpg`` and the split lists
``<domain>_train.txt`` / ``<domain>_test.txt``, one image per line as
``<domain>/<class>/<file>.jpg <label>`` (paths relative to ``<root>/domainnet``).
"""

from __future__ import annotations

from pathlib import Path

from .layout import DOMAINNET_DIR, missing_data

DOMAINNET_DOMAINS = ("real", "clipart", "sketch", "painting", "quickdraw", "infograph")
DOMAINNET_SPLITS = ("train", "test")
_HOW_TO_GET = (
    "DomainNet cannot be downloaded automatically: get each domain's zip and its "
    "<domain>_train.txt / <domain>_test.txt from http://ai.bu.edu/M3SDA/ and extract "
    "them into <data_root>/domainnet/ (so that e.g. domainnet/clipart/aircraft_carrier/ "
    "and domainnet/clipart_train.txt exist)."
)


def read_domainnet_split(data_root: Path, domain: str, split: str) -> tuple[list[str], list[int], dict[int, str]]:
    """Read one official split list.

    Returns:
        ``(paths, labels, names)``: absolute image paths, their labels, and the
        class name (the folder) seen for each label.

    Raises:
        ValueError: unknown domain or split, a malformed line, or one label used
            for two class folders.
        FileNotFoundError: the list file or any image it names is missing.
    """
    if domain not in DOMAINNET_DOMAINS:
        raise ValueError(f"unknown DomainNet domain {domain!r}; valid: {list(DOMAINNET_DOMAINS)}")
    if split not in DOMAINNET_SPLITS:
        raise ValueError(f"DomainNet split must be one of {DOMAINNET_SPLITS}, got {split!r}")
    root = Path(data_root) / DOMAINNET_DIR
    list_file = root / f"{domain}_{split}.txt"
    if not list_file.is_file():
        raise missing_data(f"DomainNet {domain} {split} split list", list_file, _HOW_TO_GET)

    paths: list[str] = []
    labels: list[int] = []
    names: dict[int, str] = {}
    with open(list_file, encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            line = line.strip()
            if not line:
                continue
            parts = line.rsplit(maxsplit=1)
            if len(parts) != 2 or not parts[1].lstrip("-").isdigit() or int(parts[1]) < 0:
                raise ValueError(f"{list_file}:{number}: expected '<path> <label>', got {line!r}")
            relative, label = parts[0], int(parts[1])
            pieces = relative.split("/")
            name = pieces[1] if len(pieces) >= 3 else f"class_{label}"
            if names.setdefault(label, name) != name:
                raise ValueError(f"{list_file}:{number}: label {label} is used for both {names[label]!r} and {name!r}")
            paths.append(str(root / relative))
            labels.append(label)
    if not paths:
        raise ValueError(f"DomainNet split list {list_file} lists no images")
    missing = [path for path in paths if not Path(path).is_file()]
    if missing:
        raise missing_data(
            f"{len(missing)} of the {len(paths)} images listed in {list_file.name}",
            f"for example {missing[0]}",
            _HOW_TO_GET,
        )
    return paths, labels, names
