"""A crash between any two steps of query or ingest: the rerun continues, nothing is lost or counted twice."""

import json

import pytest
import torch

from clue_ext._atomic import atomic_write
from clue_ext.experiments import storage
from clue_ext.label import steps
from label_support import answers, cli, copy_project, new_project, requested, write_csv

pytestmark = pytest.mark.usefixtures("single_thread")


class Crash(KeyboardInterrupt):
    """Stands for Ctrl-C or a killed process at one step."""


def crash_after(monkeypatch, step):
    seen = []

    def completed(name):
        seen.append(name)
        if name == step:
            raise Crash(step)

    monkeypatch.setattr(steps, "completed", completed)
    return seen


@pytest.fixture(scope="module")
def fresh(tmp_path_factory, example):
    """A project just created (nothing trained)."""
    return new_project(tmp_path_factory.mktemp("label_crash") / "fresh", example)


@pytest.fixture(scope="module")
def answered(tmp_path_factory, fresh, example):
    """Round 1 asked and answered; and that project after an uninterrupted second query (the reference)."""
    work = tmp_path_factory.mktemp("label_crash_answered")
    project = copy_project(fresh, work / "answered")
    truth = answers(example)
    assert cli("query", project.folder) == 0
    assert cli("ingest", project.folder, write_csv(work / "r1.csv", [(p, truth[p]) for p in requested(project)])) == 0
    reference = copy_project(project, work / "reference")
    assert cli("query", reference.folder) == 0
    return project, reference


def request(project, round_index):
    return {k: v for k, v in project.request(round_index).items() if k != "query_seconds"}


def same_round(project, reference, round_index):
    assert request(project, round_index) == request(reference, round_index)
    ours, theirs = project.load_model(round_index - 1), reference.load_model(round_index - 1)
    assert ours["labeled"] == theirs["labeled"]
    assert all(torch.equal(ours["model"][k], theirs["model"][k]) for k in theirs["model"])
    for name in ("to_label.csv", "tasks.json"):
        assert (project.folder / name).read_text() == (reference.folder / name).read_text()


@pytest.mark.parametrize("step", ["round 1 updated", "round 2 selected", "request files written"])
def test_a_query_crashed_between_steps_continues(answered, tmp_path, monkeypatch, step):
    base, reference = answered
    project = copy_project(base, tmp_path / "project")
    seen = crash_after(monkeypatch, step)
    assert cli("query", project.folder) == 130
    assert seen[-1] == step
    monkeypatch.setattr(steps, "completed", lambda name: seen.append(name))
    seen.clear()
    assert cli("query", project.folder) == 0
    # Only the steps after the crash ran again (a completed selection is never redone: the request stands).
    assert "round 1 updated" not in seen
    assert ("round 2 selected" in seen) == (step == "round 1 updated")
    same_round(project, reference, 2)


@pytest.mark.parametrize("step", ["source model trained", "round 0 adapted"])
def test_the_first_query_crashed_in_training_continues(fresh, answered, tmp_path, monkeypatch, step):
    _, reference = answered
    project = copy_project(fresh, tmp_path / "project")
    crash_after(monkeypatch, step)
    assert cli("query", project.folder) == 130
    assert project.latest_round() == 0
    saved = {p.name: p.stat().st_mtime_ns for p in project.cache_dir.glob("*.pt")}
    assert len(saved) == (1 if step == "source model trained" else 2)
    monkeypatch.setattr(steps, "completed", lambda name: None)
    assert cli("query", project.folder) == 0
    # What was saved before the crash was read back, not trained again.
    assert all(project.cache_dir.joinpath(name).stat().st_mtime_ns == ns for name, ns in saved.items())
    assert request(project, 1) == request(reference, 1)


def test_a_label_arriving_after_a_crashed_query_is_trained_on(answered, example, tmp_path, monkeypatch):
    """The update is saved, the crash comes before the next request: a late label must not be left out."""
    base, _ = answered
    project = copy_project(base, tmp_path / "project")
    partial = project.request(1)["paths"]
    # Round 1 answered in part, the query told to go on, crashing right after the update.
    labels = project.labels()
    project.write_labels({p: e for p, e in labels.items() if p != partial[-1]})
    crash_after(monkeypatch, "round 1 updated")
    assert cli("query", project.folder, "--accept-partial") == 130
    assert len(project.load_model(1)["labeled"]) == 4
    monkeypatch.setattr(steps, "completed", lambda name: None)
    truth = answers(example)
    assert cli("ingest", project.folder, write_csv(tmp_path / "late.csv", [(partial[-1], truth[partial[-1]])])) == 0
    assert cli("query", project.folder) == 0
    assert len(project.load_model(1)["labeled"]) == 5


@pytest.mark.parametrize("step", ["labels recorded", "request files written"])
def test_an_ingest_crashed_between_steps_loses_and_repeats_nothing(answered, example, tmp_path, monkeypatch, step):
    base, reference = answered
    project = copy_project(reference, tmp_path / "project")
    truth = answers(example)
    asked = requested(project)
    file = write_csv(tmp_path / "labels.csv", [(p, truth[p]) for p in asked[:3]])
    crash_after(monkeypatch, step)
    assert cli("ingest", project.folder, file) == 130
    assert len(project.labels()) == 5 + 3  # recorded before the crash, whole
    monkeypatch.setattr(steps, "completed", lambda name: None)
    assert cli("ingest", project.folder, file) == 0
    labels = project.labels()
    assert len(labels) == 8 and all(labels[p]["label"] == truth[p] for p in asked[:3])
    assert requested(project) == asked[3:]
    assert len(list((project.folder / "ingested").glob("*-labels.csv"))) == 1


def test_an_ingest_killed_while_writing_the_labels_records_nothing(answered, example, tmp_path, monkeypatch):
    base, reference = answered
    project = copy_project(reference, tmp_path / "project")
    truth = answers(example)
    asked = requested(project)
    before = project.labels_path.read_bytes()
    file = write_csv(tmp_path / "labels.csv", [(p, truth[p]) for p in asked])

    def killed_mid_write(path, data):
        text = json.dumps(data)

        def write(handle):
            handle.write(text[: len(text) // 2])
            raise Crash("killed half way through writing the labels")

        atomic_write(path, write, binary=False)

    monkeypatch.setattr(storage, "write_json", killed_mid_write)
    assert cli("ingest", project.folder, file) == 130
    monkeypatch.undo()
    assert project.labels_path.read_bytes() == before
    assert not list(project.folder.glob("labels.json.*.tmp"))
    assert cli("ingest", project.folder, file) == 0
    assert len(project.labels()) == 10 and requested(project) == []
