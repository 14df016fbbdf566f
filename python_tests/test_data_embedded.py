"""Embedded benchmarks: shapes, content, splits, determinism and the on-disk cache."""

from __future__ import annotations

import dataclasses
import logging
import os

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from clue_ext.data import TensorImageDataset, available_shifts, load_shift, stratified_split
from clue_ext.data.cache import cache_file
from clue_ext.data.embedded import FORMAT_VERSION, RECIPES, build_arrays, load_embedded_shift
from clue_ext.data.embedded.raw_material import load_mnist_digits, load_uci_digits
from clue_ext.data.embedded.uci_digits import upscale_uci_digits

EMBEDDED = ["synth->mnist", "mnist->mnistm", "uci->mnist"]
EXPECTED = {  # name: (channels, source size, pool size, test size)
    "synth->mnist": (1, 10000, 3500, 1500),
    "mnist->mnistm": (3, 2000, 2000, 1000),
    "uci->mnist": (1, 1797, 3500, 1500),
}


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("clue_cache")


@pytest.fixture(scope="module")
def shifts(cache_dir):
    """Every embedded shift built once with seed 0 (the tests below share them)."""
    return {name: load_shift(name, seed=0, cache_dir=cache_dir) for name in EMBEDDED}


def parts(shift):
    return {"source": shift.source_train, "pool": shift.target_pool, "test": shift.target_test}


def raw_uint8(images: torch.Tensor, shift) -> np.ndarray:
    """Undo the shift's normalisation: back to the uint8 pixels that were cached."""
    mean, std = (torch.tensor(v).view(1, -1, 1, 1) for v in shift.normalization)
    return (images * std + mean).mul(255).round().clamp(0, 255).to(torch.uint8).numpy()


# ---------------------------------------------------------------- registry


def test_embedded_shifts_are_listed_first():
    assert available_shifts()[:3] == [("synth", "mnist"), ("mnist", "mnistm"), ("uci", "mnist")]
    assert available_shifts("embedded") == [tuple(name.split("->")) for name in EMBEDDED]


def test_source_and_target_or_one_arrow_string_name_the_same_shift(shifts, cache_dir):
    by_pair = load_shift("UCI", "mnist", cache_dir=cache_dir)
    by_string = load_shift("uci->mnist", cache_dir=cache_dir)
    assert by_pair.name == by_string.name == "uci->mnist"
    assert torch.equal(by_pair.target_pool.images, by_string.target_pool.images)


# ---------------------------------------------------------------- shapes and content


@pytest.mark.parametrize("name", EMBEDDED)
def test_shapes_channels_sizes_and_labels(shifts, name):
    shift = shifts[name]
    channels, n_source, n_pool, n_test = EXPECTED[name]
    assert (shift.name, shift.in_channels, shift.image_size, shift.num_classes) == (name, channels, 28, 10)
    assert shift.embedded and shift.class_names == tuple("0123456789")
    sizes = {"source": n_source, "pool": n_pool, "test": n_test}
    for part, dataset in parts(shift).items():
        assert isinstance(dataset, TensorImageDataset)
        assert dataset.images.shape == (sizes[part], channels, 28, 28)
        assert dataset.images.dtype == torch.float32
        assert torch.isfinite(dataset.images).all()
        assert dataset.targets.dtype == torch.long and dataset.targets.shape == (sizes[part],)
        assert len(dataset) == sizes[part]
        # every class present, and in the balanced proportions of the raw data
        counts = torch.bincount(dataset.targets, minlength=10)
        assert counts.shape == (10,) and (counts > 0).all(), (part, counts)
        assert counts.max() - counts.min() <= max(2, sizes[part] // 50), (part, counts)


@pytest.mark.parametrize("name", EMBEDDED)
def test_items_match_the_tensors_and_batch_through_a_dataloader(shifts, name):
    dataset = shifts[name].target_pool
    image, label = dataset[7]
    assert torch.equal(image, dataset.images[7]) and label == int(dataset.targets[7])
    assert isinstance(label, int)
    images, labels = next(iter(DataLoader(dataset, batch_size=64, shuffle=False)))
    assert torch.equal(images, dataset.images[:64]) and torch.equal(labels, dataset.targets[:64])
    assert dataset.with_mode("train").images is dataset.images


@pytest.mark.parametrize("name", EMBEDDED)
def test_normalised_to_roughly_zero_mean_unit_scale(shifts, name):
    shift = shifts[name]
    source, pool = shift.source_train.images, shift.target_pool.images
    # the two domains are weighted equally in the statistics
    per_channel_mean = (source.mean(dim=(0, 2, 3)) + pool.mean(dim=(0, 2, 3))) / 2
    assert per_channel_mean.abs().max() < 1e-3
    for images in (source, pool, shift.target_test.images):
        assert images.mean().abs() < 1.0
        assert 0.5 < images.std() < 1.5


def test_mnist_target_is_the_shipped_digits_with_their_labels(shifts):
    digits, labels = load_mnist_digits()
    for name in ("synth->mnist", "uci->mnist"):
        shift = shifts[name]
        pool, test = shift.target_pool, shift.target_test
        origin = torch.cat([pool.origin, test.origin]).numpy()
        # the 5,000 digits split into pool and test, none lost or repeated
        assert sorted(origin.tolist()) == list(range(len(labels)))
        for dataset in (pool, test):
            assert np.array_equal(dataset.targets.numpy(), labels[dataset.origin.numpy()])
            assert np.array_equal(raw_uint8(dataset.images, shift)[:, 0], digits[dataset.origin.numpy()])


def test_mnist_to_mnistm_uses_disjoint_digits_and_blends_the_target(shifts):
    shift = shifts["mnist->mnistm"]
    digits, labels = load_mnist_digits()
    source, pool, test = (set(d.origin.tolist()) for d in parts(shift).values())
    assert not (source & pool) and not (source & test) and not (pool & test)
    assert len(source | pool | test) == len(labels)

    src = shift.source_train
    src_raw = raw_uint8(src.images, shift)
    # source: the MNIST digit itself, replicated to three channels
    assert np.array_equal(src_raw, np.repeat(digits[src.origin.numpy()][:, None], 3, axis=1))
    assert np.array_equal(src.targets.numpy(), labels[src.origin.numpy()])

    tgt = shift.target_pool
    tgt_raw = raw_uint8(tgt.images, shift).astype(np.int16)
    assert np.array_equal(tgt.targets.numpy(), labels[tgt.origin.numpy()])
    # target: a colour photo shows through (channels differ) ...
    channel_spread = np.abs(tgt_raw[:, 0] - tgt_raw[:, 1]).mean(axis=(1, 2))
    assert (channel_spread > 1).mean() > 0.9
    # ... and under full ink the |patch - digit| blend is 255 - patch: the photo,
    # inverted, so it varies there (a plain overlay would be a constant 255).
    ink = digits[tgt.origin.numpy()] == 255
    flat = tgt_raw.transpose(0, 2, 3, 1)[ink]
    assert flat.shape[0] > 10000 and (flat.std(axis=0) > 20).all()


def test_uci_source_is_the_upscaled_sklearn_digits(shifts):
    shift = shifts["uci->mnist"]
    images, labels = load_uci_digits()
    src = shift.source_train
    assert sorted(src.origin.tolist()) == list(range(len(labels)))
    assert np.array_equal(src.targets.numpy(), labels[src.origin.numpy()])
    assert np.array_equal(raw_uint8(src.images, shift), upscale_uci_digits(images[src.origin.numpy()]))
    # MNIST layout: a 4-pixel empty frame around a 20x20 box
    raw = raw_uint8(src.images, shift)
    assert raw[:, :, :4].max() == 0 and raw[:, :, -4:].max() == 0 and raw[:, :, :, :4].max() == 0


def test_synthetic_digits_depict_their_labels(shifts):
    """1-NN on polarity-free cosine similarity: far above chance only if images match labels."""
    src = shifts["synth->mnist"].source_train
    x = src.images[:4000].flatten(1)
    x = x - x.mean(dim=1, keepdim=True)
    x = x / x.norm(dim=1, keepdim=True)
    y = src.targets[:4000]
    nearest = (x[:1000] @ x[1000:].T).abs().argmax(dim=1)
    accuracy = (y[1000:][nearest] == y[:1000]).float().mean().item()
    assert accuracy > 0.8, accuracy
    assert (src.origin == -1).all()  # synthetic: no raw-material row


def test_synthetic_digits_vary_in_colour_and_polarity(shifts):
    raw = raw_uint8(shifts["synth->mnist"].source_train.images[:2000], shifts["synth->mnist"])[:, 0].astype(float)
    border = np.concatenate([raw[:, 0], raw[:, -1], raw[:, :, 0], raw[:, :, -1]], axis=1).mean(axis=1)
    background_levels = np.histogram(border, bins=8, range=(0, 255))[0]
    assert (background_levels > 0).sum() >= 6  # many background grey levels
    centre = raw[:, 10:18, 10:18].mean(axis=(1, 2))
    dark_on_light = (centre < border).mean()
    assert 0.2 < dark_on_light < 0.8  # both polarities


# ---------------------------------------------------------------- determinism


@pytest.mark.parametrize("name", EMBEDDED)
def test_a_fresh_build_reproduces_the_cached_arrays(cache_dir, shifts, name):
    cached = build_arrays(name, 0, cache_dir=cache_dir)
    # the build must depend on its seed alone, not on global random state
    torch.manual_seed(1234)
    np.random.seed(1234)
    rebuilt = build_arrays(name, 0, use_cache=False)
    assert cached.keys() == rebuilt.keys()
    for key in cached:
        assert np.array_equal(cached[key], rebuilt[key]), key


@pytest.mark.parametrize("name", EMBEDDED)
def test_another_seed_gives_other_data(shifts, name):
    other = build_arrays(name, 1, use_cache=False)
    shift = shifts[name]
    pool_origin = shift.target_pool.origin.numpy()
    assert set(other["pool_origin"]) != set(pool_origin)  # another target split
    if name == "synth->mnist":  # new renderings
        assert not np.array_equal(other["source_x"], raw_uint8(shift.source_train.images, shift))
    if name == "mnist->mnistm":  # other source digits, other photo patches
        assert set(other["source_origin"]) != set(shift.source_train.origin.tolist())
        assert not np.array_equal(other["pool_x"][:50], raw_uint8(shift.target_pool.images[:50], shift))


# ---------------------------------------------------------------- cache


def test_cache_hit_returns_identical_data_without_building(tmp_path, monkeypatch):
    first = load_embedded_shift("uci->mnist", seed=3, cache_dir=tmp_path)
    path = cache_file(tmp_path, "uci->mnist", 3, FORMAT_VERSION)
    assert path.is_file() and oct(path.stat().st_mode & 0o777) == oct(0o644)

    def no_build(seed):
        raise AssertionError("cache hit expected, but the recipe ran")

    monkeypatch.setitem(RECIPES, "uci->mnist", dataclasses.replace(RECIPES["uci->mnist"], build=no_build))
    second = load_embedded_shift("uci->mnist", seed=3, cache_dir=tmp_path)
    for a, b in zip(parts(first).values(), parts(second).values()):
        assert torch.equal(a.images, b.images) and torch.equal(a.targets, b.targets)
        assert torch.equal(a.origin, b.origin)
    assert first.normalization == second.normalization


def test_cache_key_has_name_seed_and_format_version(tmp_path):
    path = cache_file(tmp_path, "synth->mnist", 7, FORMAT_VERSION)
    assert path.parent == tmp_path
    assert path.name == f"synth-to-mnist-seed7-v{FORMAT_VERSION}.npz"
    assert cache_file(tmp_path, "synth->mnist", 8, FORMAT_VERSION) != path
    assert cache_file(tmp_path, "synth->mnist", 7, FORMAT_VERSION + 1) != path


@pytest.mark.parametrize("damage", ["garbage", "truncated", "empty", "other_seed"])
def test_damaged_cache_file_is_rebuilt(tmp_path, damage, caplog):
    reference = build_arrays("uci->mnist", 5, use_cache=False)
    path = cache_file(tmp_path, "uci->mnist", 5, FORMAT_VERSION)
    build_arrays("uci->mnist", 5, cache_dir=tmp_path)
    good_bytes = path.read_bytes()
    if damage == "garbage":
        path.write_bytes(b"not a zip file at all" * 100)
    elif damage == "truncated":  # an interrupted copy: the zip directory is gone
        path.write_bytes(good_bytes[: len(good_bytes) // 2])
    elif damage == "empty":
        path.write_bytes(b"")
    else:  # a valid file, but built for another seed
        build_arrays("uci->mnist", 6, cache_dir=tmp_path)
        os.replace(cache_file(tmp_path, "uci->mnist", 6, FORMAT_VERSION), path)

    with caplog.at_level(logging.WARNING, logger="clue_ext.data.cache"):
        arrays = build_arrays("uci->mnist", 5, cache_dir=tmp_path)
    assert "rebuilding" in caplog.text
    for key in reference:
        assert np.array_equal(arrays[key], reference[key]), key
    assert path.read_bytes() == good_bytes  # and the file was repaired


def test_bit_flip_inside_the_cache_is_detected(tmp_path, caplog):
    reference = build_arrays("uci->mnist", 5, use_cache=False)
    path = cache_file(tmp_path, "uci->mnist", 5, FORMAT_VERSION)
    build_arrays("uci->mnist", 5, cache_dir=tmp_path)
    data = bytearray(path.read_bytes())
    data[len(data) // 3] ^= 0xFF  # inside the image data: the zip CRC catches it
    path.write_bytes(bytes(data))
    with caplog.at_level(logging.WARNING, logger="clue_ext.data.cache"):
        arrays = build_arrays("uci->mnist", 5, cache_dir=tmp_path)
    assert "unreadable cache file" in caplog.text
    assert np.array_equal(arrays["source_x"], reference["source_x"])


def test_interrupted_write_leaves_no_cache_file(tmp_path, monkeypatch):
    import clue_ext.data.cache as cache_module

    def interrupted_savez(handle, **arrays):
        handle.write(b"PK\x03\x04 half a zip")
        raise KeyboardInterrupt

    monkeypatch.setattr(cache_module.np, "savez", interrupted_savez)
    with pytest.raises(KeyboardInterrupt):
        build_arrays("uci->mnist", 0, cache_dir=tmp_path)
    assert list(tmp_path.iterdir()) == []  # neither a final file nor a temporary one
    monkeypatch.undo()
    arrays = build_arrays("uci->mnist", 0, cache_dir=tmp_path)
    assert arrays["source_x"].shape == (1797, 1, 28, 28)
    assert [p.name for p in tmp_path.iterdir()] == [cache_file(tmp_path, "uci->mnist", 0, FORMAT_VERSION).name]


def test_default_cache_dir_comes_from_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("CLUE_EXT_CACHE", str(tmp_path / "from_env"))
    load_shift("uci", "mnist", seed=2)
    assert (tmp_path / "from_env" / f"uci-to-mnist-seed2-v{FORMAT_VERSION}.npz").is_file()


# ---------------------------------------------------------------- splits


def test_stratified_split_is_disjoint_complete_proportional_and_seeded():
    labels = np.repeat(np.arange(4), [100, 50, 30, 20])
    parts_a = stratified_split(labels, (0.5, 0.3, 0.2), np.random.default_rng(0))
    parts_b = stratified_split(labels, (0.5, 0.3, 0.2), np.random.default_rng(0))
    parts_c = stratified_split(labels, (0.5, 0.3, 0.2), np.random.default_rng(1))
    assert sorted(np.concatenate(parts_a).tolist()) == list(range(len(labels)))
    for part, fraction in zip(parts_a, (0.5, 0.3, 0.2)):
        counts = np.bincount(labels[part], minlength=4)
        assert np.abs(counts - fraction * np.array([100, 50, 30, 20])).max() <= 1
    assert all(np.array_equal(a, b) for a, b in zip(parts_a, parts_b))
    assert not np.array_equal(parts_a[0], parts_c[0])
    # parts are shuffled, not in class order
    assert not np.all(np.diff(labels[parts_a[0]]) >= 0)


@pytest.mark.parametrize("fractions", [(0.5, 0.4), (0.0, 1.0), ()])
def test_stratified_split_rejects_bad_fractions(fractions):
    with pytest.raises(ValueError):
        stratified_split(np.zeros(10, dtype=int), fractions, np.random.default_rng(0))
