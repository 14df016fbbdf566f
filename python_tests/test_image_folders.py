"""Your own domains: ImageFolder-layout folders, checked up front, run end to end."""

import json

import numpy as np
import pytest
from PIL import Image

from clue_ext.data import load_folder_shift
from clue_ext.experiments import RunOptions, get_preset, run_experiment
from clue_ext.experiments.__main__ import main

pytestmark = pytest.mark.usefixtures("single_thread")

CLASSES = {"circle": (220, 40, 40), "square": (40, 200, 60), "stripe": (40, 60, 220)}


def write_domain(root, per_class, *, inverted=False, seed=0, classes=CLASSES, suffix=".png"):
    """A class folder of small generated images per class; the target domain inverts them."""
    rng = np.random.default_rng(seed)
    for name, colour in classes.items():
        folder = root / name
        folder.mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            pixels = rng.integers(0, 60, size=(20, 24, 3)).astype(np.uint8)
            pixels[5:15, 6:18] = colour
            if inverted:
                pixels = 255 - pixels
            Image.fromarray(pixels).save(folder / f"{name}_{i:03d}{suffix}")
    return root


@pytest.fixture
def folders(tmp_path):
    source = write_domain(tmp_path / "studio", 16)
    target = write_domain(tmp_path / "field", 14, inverted=True, seed=1)
    return source, target


def test_folder_shift_splits_the_target_per_class(folders):
    source, target = folders
    shift = load_folder_shift(source, target, model="lenet", test_fraction=0.3, seed=0, progress=False)
    assert (shift.name, shift.num_classes, shift.in_channels, shift.image_size) == ("studio->field", 3, 3, 28)
    assert shift.class_names == ("circle", "square", "stripe")
    assert len(shift.source_train) == 48
    assert len(shift.target_pool) + len(shift.target_test) == 42
    assert np.bincount(shift.target_test.targets.numpy()).tolist() == [4, 4, 4]  # round(0.3 * 14) per class
    assert set(shift.target_pool.paths).isdisjoint(shift.target_test.paths)
    image, label = shift.target_pool[0]
    assert image.shape == (3, 28, 28) and -1.0 <= float(image.min()) and float(image.max()) <= 1.0
    again = load_folder_shift(source, target, model="lenet", seed=0, progress=False)
    other = load_folder_shift(source, target, model="lenet", seed=1, progress=False)
    assert again.target_test.paths == shift.target_test.paths != other.target_test.paths
    resnet = load_folder_shift(source, target, model="resnet18", seed=0, progress=False)
    assert resnet.target_test[0][0].shape == (3, 224, 224)


def test_folders_without_shared_classes_are_refused(tmp_path):
    source = write_domain(tmp_path / "a", 2, classes={"cat": (1, 2, 3)})
    target = write_domain(tmp_path / "b", 2, classes={"dog": (1, 2, 3)})
    with pytest.raises(ValueError, match="share no class folder"):
        load_folder_shift(source, target, progress=False)


def test_an_empty_class_folder_is_named(folders):
    source, target = folders
    (target / "square").mkdir(exist_ok=True)
    for path in (target / "square").iterdir():
        path.unlink()
    with pytest.raises(ValueError, match="target_dir has class folder.*without images.*square"):
        load_folder_shift(source, target, progress=False)


def test_an_unreadable_image_is_named_before_anything_trains(folders):
    source, target = folders
    broken = source / "stripe" / "broken.jpg"
    broken.write_bytes(b"not a jpeg at all")
    with pytest.raises(ValueError, match="source_dir has 1 unreadable image.*broken.jpg"):
        load_folder_shift(source, target, progress=False)


def test_an_unknown_model_is_refused(folders):
    source, target = folders
    with pytest.raises(ValueError, match="model must be one of lenet, resnet34, .* got 'lenett'"):
        load_folder_shift(source, target, model="lenett", progress=False)


def test_missing_folders_and_folders_without_classes_are_refused(tmp_path):
    with pytest.raises(ValueError, match="source_dir .* is not a folder"):
        load_folder_shift(tmp_path / "nowhere", tmp_path, progress=False)
    (tmp_path / "flat").mkdir()
    Image.new("RGB", (8, 8)).save(tmp_path / "flat" / "loose.png")
    with pytest.raises(ValueError, match="target_dir .* has no class folders"):
        load_folder_shift(write_domain(tmp_path / "ok", 2), tmp_path / "flat", progress=False)


TINY_FOLDER_FLAGS = ["--preset", "tiny", "--strategies", "uniform,clue", "--da", "mme", "--rounds", "2",
                     "--budget", "3", "--runs", "1", "--epochs", "1", "--source-epochs", "2", "--quiet"]


def test_an_image_folder_run_end_to_end(folders, tmp_path, capsys):
    source, target = folders
    out = tmp_path / "out"
    code = main(["--source-dir", str(source), "--target-dir", str(target), "--out", str(out), *TINY_FOLDER_FLAGS])
    assert code == 0, capsys.readouterr().err
    rows = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]
    assert {(r["strategy"], r["round"], r["n_labels"]) for r in rows} == {
        (s, k, 3 * k) for s in ("uniform", "clue") for k in (0, 1, 2)
    }
    assert all(r["shift"] == "studio->field" for r in rows)
    recorded = json.loads((out / "config.json").read_text())["config"]
    assert (recorded["source_dir"], recorded["target_dir"], recorded["model"]) == (str(source), str(target), "lenet")
    assert "studio->field" in capsys.readouterr().out


def test_a_broken_folder_fails_the_cli_before_training(folders, tmp_path, capsys):
    source, target = folders
    (target / "circle" / "bad.png").write_bytes(b"\x89PNG garbage")
    out = tmp_path / "out"
    code = main(["--source-dir", str(source), "--target-dir", str(target), "--out", str(out), *TINY_FOLDER_FLAGS])
    assert code == 2
    assert "target_dir has 1 unreadable image" in capsys.readouterr().err
    assert not out.exists()  # nothing written, nothing trained


def test_cli_folder_flags_go_together(folders, capsys):
    source, _ = folders
    with pytest.raises(SystemExit):
        main(["--source-dir", str(source)])
    assert "--source-dir/--target-dir: give both" in capsys.readouterr().err


def test_run_experiment_accepts_any_domain_shift(folders, tmp_path):
    """A config naming an unregistered shift runs when the shift itself is handed in."""
    source, target = folders
    shift = load_folder_shift(source, target, model="lenet", progress=False)
    config = get_preset("tiny").config.replace(
        source="studio", target="field", limit_source=None, limit_pool=None, limit_test=None,
        strategies=("uniform",), da_methods=("ft",), rounds=1, budget=4, runs=1, source_epochs=1,
    )
    result = run_experiment(config, RunOptions(out_dir=tmp_path / "out", progress=False), shift=shift)
    assert [(r["round"], r["n_labels"]) for r in result.rows] == [(0, 0), (1, 4)]
    with pytest.raises(ValueError, match="unknown shift studio->field.*shift="):
        run_experiment(config, RunOptions(out_dir=tmp_path / "other", progress=False))
