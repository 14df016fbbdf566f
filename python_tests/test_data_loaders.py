"""Real-data loaders, tested on tiny fixture files written here in the real on-disk formats."""

from __future__ import annotations

import bz2
import struct
from pathlib import Path

import numpy as np
import pytest
import scipy.io
import torch
import torchvision
from PIL import Image

from clue_ext.data import ImageListDataset, TensorImageDataset, available_shifts, load_shift, shift_entries
from clue_ext.data.real import torchvision_digits
from clue_ext.data.real.office31 import OFFICE31_TEST_FRACTION

# ---------------------------------------------------------------- fixture writers

MNIST_SIZES = {"train": 30, "t10k": 20}
SVHN_SIZES = {"train": 25, "test": 15}
USPS_SIZES = {"usps.bz2": 24, "usps.t.bz2": 12}
CLASS_COLOURS = {"back_pack": (200, 40, 40), "bike": (40, 200, 40), "calculator": (40, 40, 200)}


def mnist_value(label: int) -> int:
    """Grey level of every pixel of a fixture MNIST digit with this label."""
    return 10 + 24 * label


def write_idx(path: Path, array: np.ndarray) -> None:
    """An idx-ubyte file as published by LeCun: big-endian magic (0x08 = ubyte, ndim), dims, data."""
    header = struct.pack(">I", 0x0800 | array.ndim) + b"".join(struct.pack(">I", d) for d in array.shape)
    path.write_bytes(header + np.ascontiguousarray(array, dtype=np.uint8).tobytes())


def write_mnist(root: Path) -> dict[str, np.ndarray]:
    raw = root / "MNIST" / "raw"
    raw.mkdir(parents=True)
    labels = {}
    for prefix, n in MNIST_SIZES.items():
        y = (np.arange(n) * 7 + 3) % 10
        images = np.stack([np.full((28, 28), mnist_value(k), dtype=np.uint8) for k in y])
        write_idx(raw / f"{prefix}-images-idx3-ubyte", images)
        write_idx(raw / f"{prefix}-labels-idx1-ubyte", y.astype(np.uint8))
        labels[prefix] = y
    return labels


def svhn_colour(index: int) -> np.ndarray:
    return np.array([(index * 37) % 256, (index * 91) % 256, (index * 53) % 256], dtype=np.uint8)


def write_svhn(root: Path) -> dict[str, np.ndarray]:
    """``{split}_32x32.mat`` with SVHN's keys and layout: X (32, 32, 3, N) uint8, y (N, 1) in 1..10."""
    folder = root / "svhn"
    folder.mkdir(parents=True)
    digits = {}
    for split, n in SVHN_SIZES.items():
        x = np.empty((32, 32, 3, n), dtype=np.uint8)
        for i in range(n):
            x[:, :, :, i] = svhn_colour(i)
        digit = np.arange(n) % 10
        y = np.where(digit == 0, 10, digit).astype(np.uint8)[:, None]  # SVHN writes 0 as 10
        scipy.io.savemat(folder / f"{split}_32x32.mat", {"X": x, "y": y})
        digits[split] = digit
    return digits


def usps_value(label: int) -> float:
    return -1.0 + label / 5.0


def usps_uint8(label: int) -> int:
    """The grey level torchvision makes of a fixture USPS value (float32 parse, then truncation)."""
    value = np.asarray([f"{usps_value(label):.6f}"], dtype=np.float32)
    return int(((value + 1) / 2 * 255).astype(np.uint8)[0])


def write_usps(root: Path) -> dict[str, np.ndarray]:
    """bz2 libsvm files as distributed: '<label 1..10> 1:<v> ... 256:<v>', v in [-1, 1]."""
    folder = root / "usps"
    folder.mkdir(parents=True)
    digits = {}
    for filename, n in USPS_SIZES.items():
        digit = (np.arange(n) * 3) % 10
        lines = [
            f"{k + 1} " + " ".join(f"{j}:{usps_value(k):.6f}" for j in range(1, 257)) for k in digit
        ]
        (folder / filename).write_bytes(bz2.compress(("\n".join(lines) + "\n").encode()))
        digits[filename] = digit
    return digits


def write_jpeg(path: Path, colour) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (40, 30), tuple(colour)).save(path, format="JPEG", quality=95)


def write_office31(root: Path, per_class: dict[str, int]) -> dict[str, list[Path]]:
    """``office31/<domain>/images/<class>/frame_NNNN.jpg``; each class one solid colour."""
    files = {}
    for domain, n in per_class.items():
        files[domain] = []
        for name, colour in CLASS_COLOURS.items():
            for i in range(n):
                path = root / "office31" / domain / "images" / name / f"frame_{i + 1:04d}.jpg"
                write_jpeg(path, colour)
                files[domain].append(path)
    return files


DOMAINNET_CLASSES = ["aircraft_carrier", "bike", "calculator"]  # labels 0, 1, 2
DOMAINNET_COLOURS = list(CLASS_COLOURS.values())


def write_domainnet(root: Path, domains=("clipart", "sketch"), sizes=(("train", 4), ("test", 2))) -> dict:
    """``domainnet/<domain>/<class>/*.jpg`` plus ``<domain>_{train,test}.txt`` in the official format."""
    base = root / "domainnet"
    lists = {}
    for domain in domains:
        for split, n in sizes:
            lines = []
            for label, name in enumerate(DOMAINNET_CLASSES):
                for i in range(n):
                    relative = f"{domain}/{name}/{domain}_{label:03d}_{split}{i:04d}.jpg"
                    write_jpeg(base / relative, DOMAINNET_COLOURS[label])
                    lines.append(f"{relative} {label}")
            (base / f"{domain}_{split}.txt").write_text("\n".join(lines) + "\n")
            lists[(domain, split)] = lines
    return lists


def mean_colour(image: torch.Tensor) -> np.ndarray:
    """Undo ImageNet normalisation and average: the image's colour in 0..255."""
    mean = torch.tensor([0.485, 0.456, 0.406]).view(3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(3, 1, 1)
    return ((image * std + mean).mean(dim=(1, 2)) * 255).numpy()


def digit_pixel(u8: float) -> float:
    return (u8 / 255.0 - 0.5) / 0.5


# ---------------------------------------------------------------- registry and errors

PAPER_PAIRS = [
    ("svhn", "mnist"), ("mnist", "usps"), ("usps", "mnist"),
    ("dslr", "amazon"), ("amazon", "dslr"), ("webcam", "amazon"), ("amazon", "webcam"), ("dslr", "webcam"),
    ("webcam", "dslr"), ("real", "clipart"), ("clipart", "sketch"), ("sketch", "painting"), ("clipart", "quickdraw"),
    ("infograph", "real"),
]  # fmt: skip


def test_available_shifts_covers_the_paper_and_the_families():
    pairs = available_shifts()
    assert set(PAPER_PAIRS) <= set(pairs)
    assert len(pairs) == len(set(pairs)) == 3 + 3 + 6 + 30
    assert len(available_shifts("domainnet")) == 30 and ("clipart", "clipart") not in pairs
    assert {e.family for e in shift_entries()} == {"embedded", "digits", "office31", "domainnet"}
    with pytest.raises(ValueError, match="family"):
        available_shifts("cifar")


@pytest.mark.parametrize("source,target", [("svhn", "usps"), ("synth", "svhn"), ("amazon", "sketch"), ("x", "y")])
def test_unknown_shift_raises_value_error_listing_the_valid_ones(source, target):
    with pytest.raises(ValueError) as info:
        load_shift(source, target)
    message = str(info.value)
    assert f"{source}->{target}" in message
    for name in ("synth->mnist", "svhn->mnist", "dslr->amazon", "clipart->sketch"):
        assert name in message


def test_real_shift_without_data_root_says_how_to_give_one(monkeypatch):
    monkeypatch.delenv("CLUE_EXT_DATA", raising=False)
    with pytest.raises(ValueError) as info:
        load_shift("svhn", "mnist")
    message = str(info.value)
    assert "data_root" in message and "CLUE_EXT_DATA" in message and "svhn/" in message


@pytest.mark.parametrize(
    "shift,expected,hint",
    [
        ("svhn->mnist", "svhn/train_32x32.mat", "download=True"),
        ("mnist->usps", "MNIST/raw", "download=True"),
        ("usps->mnist", "usps/usps.bz2", "download=True"),
        ("dslr->amazon", "office31/dslr/images", "cannot be downloaded automatically"),
        ("clipart->sketch", "domainnet/clipart_train.txt", "cannot be downloaded automatically"),
    ],
)
def test_missing_data_gives_one_error_naming_the_place_and_the_way(tmp_path, monkeypatch, shift, expected, hint):
    def no_network(*args, **kwargs):
        raise AssertionError("download attempted although download=False")

    monkeypatch.setattr(torchvision_digits, "download_url", no_network)
    root = tmp_path / "no_such_root"
    with pytest.raises(FileNotFoundError) as info:
        load_shift(shift, data_root=root)
    message = str(info.value)
    assert str(root) in message and expected in message and hint in message
    error = info.value  # one error, not a chain ending in torchvision's generic one
    assert error.__cause__ is None and (error.__context__ is None or error.__suppress_context__)
    assert not root.exists()  # nothing created either


def test_data_root_can_come_from_the_environment(tmp_path, monkeypatch):
    write_usps(tmp_path)
    write_mnist(tmp_path)
    monkeypatch.setenv("CLUE_EXT_DATA", str(tmp_path))
    shift = load_shift("usps", "mnist", verify_checksums=False)
    assert len(shift.source_train) == USPS_SIZES["usps.bz2"]


# ---------------------------------------------------------------- torchvision digits


def test_mnist_to_usps_reads_the_raw_files(tmp_path):
    mnist_labels = write_mnist(tmp_path)
    usps_labels = write_usps(tmp_path)
    shift = load_shift("mnist", "usps", data_root=tmp_path, verify_checksums=False)
    assert (shift.name, shift.in_channels, shift.image_size, shift.num_classes) == ("mnist->usps", 1, 28, 10)
    assert not shift.embedded
    expected = {
        "source_train": (mnist_labels["train"], [digit_pixel(mnist_value(k)) for k in mnist_labels["train"]]),
        "target_pool": (usps_labels["usps.bz2"], [digit_pixel(usps_uint8(k)) for k in usps_labels["usps.bz2"]]),
        "target_test": (usps_labels["usps.t.bz2"], [digit_pixel(usps_uint8(k)) for k in usps_labels["usps.t.bz2"]]),
    }  # fmt: skip
    for part, (labels, pixels) in expected.items():
        dataset = getattr(shift, part)
        assert isinstance(dataset, TensorImageDataset)
        assert dataset.images.shape == (len(labels), 1, 28, 28)  # USPS 16x16 upscaled to 28x28
        assert dataset.targets.dtype == torch.long
        assert dataset.targets.tolist() == list(labels)
        # constant fixture images stay constant; their grey level encodes the label
        expected_images = torch.tensor(pixels, dtype=torch.float32).view(-1, 1, 1, 1).expand_as(dataset.images)
        assert torch.allclose(dataset.images, expected_images, atol=1e-5)
    assert shift.source_train.mode == "train" and shift.target_pool.mode == "eval"


def test_svhn_to_mnist_converts_svhn_to_grey_28x28_and_maps_label_10_to_0(tmp_path):
    svhn_digits = write_svhn(tmp_path)
    mnist_labels = write_mnist(tmp_path)
    shift = load_shift("svhn", "mnist", data_root=tmp_path, verify_checksums=False)
    source = shift.source_train
    assert source.images.shape == (SVHN_SIZES["train"], 1, 28, 28)
    assert source.targets.tolist() == svhn_digits["train"].tolist()
    assert 0 in source.targets.tolist() and source.targets.max() <= 9
    luma = np.array([svhn_colour(i) @ np.array([0.299, 0.587, 0.114]) for i in range(SVHN_SIZES["train"])])
    expected = torch.tensor(digit_pixel(luma), dtype=torch.float32)
    assert torch.allclose(source.images.mean(dim=(1, 2, 3)), expected, atol=1e-4)
    assert shift.target_pool.targets.tolist() == mnist_labels["train"].tolist()
    assert shift.target_test.targets.tolist() == mnist_labels["t10k"].tolist()
    image, label = shift.target_test[3]
    assert image.shape == (1, 28, 28) and label == int(mnist_labels["t10k"][3])


def test_svhn_and_usps_files_are_checked_against_torchvisions_md5_by_default(tmp_path):
    write_svhn(tmp_path)
    write_usps(tmp_path)
    write_mnist(tmp_path)
    for shift, filename in (("svhn->mnist", "train_32x32.mat"), ("mnist->usps", "usps.bz2")):
        with pytest.raises(ValueError) as info:
            load_shift(shift, data_root=tmp_path)
        message = str(info.value)
        assert filename in message and "md5" in message and "verify_checksums=False" in message


def test_mnist_with_a_raw_file_missing_is_reported(tmp_path):
    write_mnist(tmp_path)
    write_usps(tmp_path)
    (tmp_path / "MNIST" / "raw" / "t10k-labels-idx1-ubyte").unlink()
    with pytest.raises(FileNotFoundError, match="MNIST"):
        load_shift("usps", "mnist", data_root=tmp_path, verify_checksums=False)


def test_download_flag_fetches_through_torchvision_only_when_asked(tmp_path, monkeypatch):
    calls = []
    fixtures = tmp_path / "fixtures"
    write_svhn(fixtures)

    def fake_download_url(url, root, filename, md5=None):
        calls.append((url, filename, md5))
        Path(root).mkdir(parents=True, exist_ok=True)
        (Path(root) / filename).write_bytes((fixtures / "svhn" / filename).read_bytes())

    monkeypatch.setattr(torchvision_digits, "download_url", fake_download_url)
    root = tmp_path / "data"
    with pytest.raises(FileNotFoundError):
        torchvision_digits.load_svhn(root, "train", download=False)
    assert calls == []
    dataset = torchvision_digits.load_svhn(root, "train", download=True, verify_checksums=False)
    url, filename, md5 = torchvision.datasets.SVHN.split_list["train"]
    assert calls == [(url, filename, md5)] and url.startswith("http") and filename == "train_32x32.mat"
    assert len(dataset) == SVHN_SIZES["train"] and (root / "svhn" / "train_32x32.mat").is_file()
    torchvision_digits.load_svhn(root, "train", download=True, verify_checksums=False)
    assert len(calls) == 1  # present already: not fetched again


# ---------------------------------------------------------------- Office-31


@pytest.fixture()
def office_root(tmp_path):
    write_office31(tmp_path, {"amazon": 10, "dslr": 4, "webcam": 3})
    return tmp_path


def test_office31_shift_source_is_whole_domain_and_target_is_split_stratified(office_root):
    shift = load_shift("dslr", "amazon", data_root=office_root, seed=0)
    assert (shift.name, shift.num_classes, shift.in_channels, shift.image_size) == ("dslr->amazon", 3, 3, 224)
    assert shift.class_names == tuple(sorted(CLASS_COLOURS))
    assert isinstance(shift.source_train, ImageListDataset) and shift.source_train.mode == "train"
    assert len(shift.source_train) == 3 * 4 and shift.source_train.targets.tolist() == [0] * 4 + [1] * 4 + [2] * 4
    pool, test = shift.target_pool, shift.target_test
    assert pool.mode == test.mode == "eval"
    assert not set(pool.paths) & set(test.paths)
    amazon = sorted(str(p) for p in (office_root / "office31" / "amazon" / "images").rglob("*.jpg"))
    assert sorted(pool.paths + test.paths) == amazon
    assert torch.bincount(test.targets).tolist() == [round(10 * OFFICE31_TEST_FRACTION)] * 3
    for dataset in (pool, test):  # labels follow the class folder of each file
        names = [Path(p).parent.name for p in dataset.paths]
        assert [shift.class_names[k] for k in dataset.targets.tolist()] == names


def test_office31_split_is_seeded(office_root):
    first = load_shift("webcam", "amazon", data_root=office_root, seed=0).target_test.paths
    again = load_shift("webcam", "amazon", data_root=office_root, seed=0).target_test.paths
    other = load_shift("webcam", "amazon", data_root=office_root, seed=1).target_test.paths
    assert first == again and set(first) != set(other)


def test_office31_images_decode_to_224_crops_of_the_right_class(office_root):
    shift = load_shift("amazon", "webcam", data_root=office_root)
    for dataset in (shift.target_pool, shift.target_test):
        for index in range(len(dataset)):
            image, label = dataset[index]
            assert image.shape == (3, 224, 224) and image.dtype == torch.float32
            colour = CLASS_COLOURS[shift.class_names[label]]
            assert np.abs(mean_colour(image) - colour).max() < 6
    train_view = shift.target_pool.with_mode("train")
    assert train_view.mode == "train" and train_view.paths is shift.target_pool.paths
    assert shift.target_pool.mode == "eval"
    image, label = train_view[0]
    assert image.shape == (3, 224, 224) and label == int(shift.target_pool.targets[0])


def test_office31_domains_with_different_classes_are_refused(office_root):
    write_jpeg(office_root / "office31" / "webcam" / "images" / "zebra" / "frame_0001.jpg", (0, 0, 0))
    with pytest.raises(ValueError, match="zebra"):
        load_shift("dslr", "webcam", data_root=office_root)


def test_office31_domain_without_images_is_reported(office_root):
    for path in (office_root / "office31" / "dslr" / "images").rglob("*.jpg"):
        path.unlink()
    with pytest.raises(FileNotFoundError, match="dslr"):
        load_shift("dslr", "amazon", data_root=office_root)


# ---------------------------------------------------------------- DomainNet


def test_domainnet_shift_follows_the_official_lists(tmp_path):
    lists = write_domainnet(tmp_path)
    shift = load_shift("clipart", "sketch", data_root=tmp_path)
    assert (shift.name, shift.num_classes, shift.in_channels, shift.image_size) == ("clipart->sketch", 3, 3, 224)
    assert shift.class_names == tuple(DOMAINNET_CLASSES)
    parts = {
        "source_train": ("clipart", "train"),
        "target_pool": ("sketch", "train"),
        "target_test": ("sketch", "test"),
    }
    for part, key in parts.items():
        dataset = getattr(shift, part)
        listed = [(str(tmp_path / "domainnet" / line.rsplit(" ", 1)[0]), int(line.rsplit(" ", 1)[1]))
                  for line in lists[key]]
        items = list(zip(dataset.paths, dataset.targets.tolist()))
        if part == "target_pool":
            # The authors' pool: the target train list less a random 10% (their unused validation split).
            assert len(items) == len(listed) - int(0.1 * len(listed))
            assert items == [item for item in listed if item in items]  # list order kept
            again = load_shift("clipart", "sketch", data_root=tmp_path).target_pool.paths
            other = load_shift("clipart", "sketch", data_root=tmp_path, seed=1).target_pool.paths
            assert again == dataset.paths and other != dataset.paths
        else:
            assert items == listed
    image, label = shift.target_test[len(shift.target_test) - 1]
    assert image.shape == (3, 224, 224) and label == 2
    assert np.abs(mean_colour(image) - DOMAINNET_COLOURS[2]).max() < 6


def test_domainnet_image_missing_from_disk_is_named(tmp_path):
    lists = write_domainnet(tmp_path)
    victim = lists[("sketch", "test")][1].rsplit(" ", 1)[0]
    (tmp_path / "domainnet" / victim).unlink()
    with pytest.raises(FileNotFoundError) as info:
        load_shift("clipart", "sketch", data_root=tmp_path)
    assert victim in str(info.value) and "sketch_test.txt" in str(info.value)


@pytest.mark.parametrize(
    "bad_line,match",
    [
        ("clipart/bike/x.jpg", "expected '<path> <label>'"),
        ("clipart/bike/x.jpg one", "expected"),
        ("clipart/zebra/x.jpg 0", "label 0"),
    ],
)
def test_domainnet_malformed_list_is_a_value_error(tmp_path, bad_line, match):
    write_domainnet(tmp_path)
    list_file = tmp_path / "domainnet" / "clipart_train.txt"
    list_file.write_text(list_file.read_text() + bad_line + "\n")
    with pytest.raises(ValueError, match=match):
        load_shift("clipart", "sketch", data_root=tmp_path)


def test_dataset_modes_are_validated(tmp_path):
    dataset = TensorImageDataset(torch.zeros(2, 1, 4, 4), torch.tensor([0, 1]))
    with pytest.raises(ValueError, match="mode"):
        dataset.with_mode("test")
    with pytest.raises(ValueError, match="targets"):
        TensorImageDataset(torch.zeros(2, 1, 4, 4), torch.tensor([0, 1, 2]))
