"""The labelling loop end to end, against the simulation: same settings and seed, same picks, models, accuracy."""

import csv
import json
import subprocess
import sys

import pytest
import torch

from clue_ext.experiments import RunOptions, run_experiment
from clue_ext.label.data import load_project_shift
from clue_ext.label.project import Project
from label_support import answers, cli, label_studio_export, new_project, requested, write_csv

pytestmark = pytest.mark.usefixtures("single_thread")

ROUNDS = 3


@pytest.fixture(scope="module")
def labelled(tmp_path_factory, example):
    """A project taken through 3 rounds, labels given as a person would: CSV, Label Studio JSON, CSV again."""
    work = tmp_path_factory.mktemp("label_loop")
    project = new_project(work / "project", example)
    truth = answers(example)
    for round_index in range(1, ROUNDS + 1):
        assert cli("query", project.folder) == 0
        asked = requested(project)
        assert len(asked) == 5 and project.latest_round() == round_index
        if round_index == 2:
            file = label_studio_export(work / "export.json", project, truth)
        else:
            # The to_label.csv columns are path,label,...; a person fills the label column.
            file = write_csv(work / f"labels{round_index}.csv", [(p, truth[p]) for p in asked])
        assert cli("ingest", project.folder, file) == 0
        assert requested(project) == []
    assert cli("query", project.folder) == 0  # trains round 3's update, asks for round 4
    return project, truth


@pytest.fixture(scope="module")
def simulated(tmp_path_factory, labelled):
    """run_experiment on the same images, the oracle reading the true classes."""
    project, truth = labelled
    out = tmp_path_factory.mktemp("label_sim")
    shift = load_project_shift(project, truth)
    config = project.config.replace(rounds=ROUNDS)
    result = run_experiment(config, RunOptions(out_dir=out, progress=False, keep_checkpoints=True), shift=shift)
    with open(out / "checkpoints" / "mme" / "clue" / "run0.json", encoding="utf-8") as handle:
        record = json.load(handle)
    state = torch.load(out / "checkpoints" / "mme" / "clue" / record["state_file"], weights_only=True)
    return result.rows, record, state


def test_the_picks_are_the_simulations(labelled, simulated):
    project, _ = labelled
    _, record, _ = simulated
    picks = [i for r in range(1, ROUNDS + 1) for i in project.request(r)["picks"]]
    assert picks == record["labeled"]
    assert len(set(picks)) == 5 * ROUNDS
    paths = [p for r in range(1, ROUNDS + 1) for p in project.request(r)["paths"]]
    assert paths == [project.targets()[i].path for i in picks]


def test_the_models_and_accuracies_are_the_simulations(labelled, simulated):
    project, _ = labelled
    rows, _, state = simulated
    final = project.load_model(ROUNDS)
    assert final["labeled"] == project.labeled_through(ROUNDS)
    assert state["model"].keys() == final["model"].keys()
    for key, tensor in state["model"].items():
        assert torch.equal(tensor, final["model"][key]), key
    accuracy = {row["round"]: row["accuracy"] for row in rows}
    for round_index in range(1, ROUNDS + 1):
        assert round(project.load_model(round_index)["accuracy"], 4) == accuracy[round_index]
    assert project.request(1)["accuracy_before"] == pytest.approx(accuracy[0], abs=1e-4)


def test_the_request_files_carry_the_suggestions(labelled, tmp_path):
    project, _ = labelled
    request = project.request(ROUNDS + 1)
    with open(project.folder / "to_label.csv", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert [r["path"] for r in rows] == request["paths"]
    assert [r["suggested"] for r in rows] == request["suggested"]
    assert all(r["label"] == "" and 0 < float(r["confidence"]) <= 1 for r in rows)
    tasks = json.loads((project.folder / "tasks.json").read_text(encoding="utf-8"))
    assert [t["data"]["path"] for t in tasks] == request["paths"]
    assert [t["predictions"][0]["result"][0]["value"]["choices"] for t in tasks] == [[s] for s in request["suggested"]]
    config = (project.folder / "label_config.xml").read_text(encoding="utf-8")
    assert config.count("<Choice ") == 10 and 'name="label" toName="image"' in config
    page = (project.folder / "to_label.html").read_text(encoding="utf-8")
    assert all(json.dumps(p) in page for p in request["paths"])


def test_status_and_predict(labelled, tmp_path):
    project, truth = labelled
    result = subprocess.run([sys.executable, "-m", "clue_ext.label", "status", str(project.folder)],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    text = result.stdout
    assert "round 3: 5 requested, 5 labelled; model updated, test accuracy" in text
    assert "round 4: 5 requested, 0 labelled" in text and "labels: 15 (" in text
    assert "still requested (round 4): 5 images" in text
    out = tmp_path / "predictions.csv"
    assert cli("predict", project.folder, "--out", out) == 0
    with open(out, encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert [r["path"] for r in rows] == [t.path for t in project.targets()]
    assert all(r["predicted"] in project.classes for r in rows)
    assert all(0 < float(r["probability"]) <= 1 and 0 <= float(r["entropy"]) <= 3.33 for r in rows)
    labels = Project.open(project.folder).labels()
    assert {r["path"]: r["label"] for r in rows if r["label"]} == {p: e["label"] for p, e in labels.items()}
    assert all(truth[p] == e["label"] for p, e in labels.items())


def test_query_again_only_rewrites_the_open_request(labelled):
    project, _ = labelled
    before = project.request(ROUNDS + 1)
    (project.folder / "to_label.csv").unlink()
    assert cli("query", project.folder) == 0
    assert project.latest_round() == ROUNDS + 1 and project.request(ROUNDS + 1) == before
    assert requested(project) == before["paths"]
