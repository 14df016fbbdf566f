"""ingest refuses what it cannot trust, whole and naming the line, and takes partial sets; init and query refuse too."""

import json

import pytest

from clue_ext.label.ingest import IngestError, ingest
from clue_ext.label.example import write_example
from clue_ext.label.label_files import read_label_file
from clue_ext.label.project import Project
from label_support import answers, cli, copy_project, label_studio_export, new_project, requested, write_csv

pytestmark = pytest.mark.usefixtures("single_thread")


@pytest.fixture(scope="module")
def second_round(tmp_path_factory, example):
    """A project whose round 1 is labelled and whose round 2 request is open."""
    work = tmp_path_factory.mktemp("label_ingest")
    project = new_project(work / "project", example)
    truth = answers(example)
    assert cli("query", project.folder) == 0
    assert cli("ingest", project.folder, write_csv(work / "r1.csv", [(p, truth[p]) for p in requested(project)])) == 0
    assert cli("query", project.folder) == 0
    return project, truth


@pytest.fixture
def project(second_round, tmp_path):
    base, truth = second_round
    return copy_project(base, tmp_path / "project"), truth


def refused(project, file, *patterns):
    before = project.labels_path.read_bytes()
    with pytest.raises(IngestError) as error:
        ingest(project, file)
    for pattern in patterns:
        assert pattern in str(error.value), str(error.value)
    assert project.labels_path.read_bytes() == before  # nothing of the file was recorded
    return str(error.value)


def wrong(truth, path):
    return str((int(truth[path]) + 1) % 10)


def test_paths_outside_the_open_request_are_refused_naming_the_line(project, tmp_path):
    project, truth = project
    open_now = requested(project)
    closed = project.request(1)["paths"][0]
    never = next(t.path for t in project.targets() if t.path not in open_now + project.request(1)["paths"])
    file = write_csv(tmp_path / "l.csv", [(open_now[0], truth[open_now[0]]), (closed, truth[closed]),
                                          (never, truth[never]), ("elsewhere/cat.png", "3")])
    message = refused(project, file, "refused 3 line(s)",
                      f"l.csv line 3: '{closed}' was requested in round 1, which is closed",
                      f"l.csv line 4: '{never}' is not in the open request (round 2",
                      "l.csv line 5: 'elsewhere/cat.png' is not an image of the target folder")
    assert "line 2" not in message


def test_unknown_classes_are_refused(project, tmp_path):
    project, truth = project
    path = requested(project)[0]
    refused(project, write_csv(tmp_path / "l.csv", [(path, "seven")]),
            "l.csv line 2: unknown class 'seven'; the classes are 0, 1, 2")


def test_conflicting_duplicates_are_refused_in_the_file_and_against_recorded_labels(project, tmp_path):
    project, truth = project
    first, second = requested(project)[:2]
    refused(project, write_csv(tmp_path / "dup.csv", [(first, truth[first]), (second, truth[second]),
                                                       (first, wrong(truth, first))]),
            f"dup.csv line 4: '{first}' is labelled '{wrong(truth, first)}' here but '{truth[first]}' on line 2")
    # The same label twice is no conflict.
    assert ingest(project, write_csv(tmp_path / "same.csv", [(first, truth[first]), (first, truth[first])])).new == 1
    refused(project, write_csv(tmp_path / "again.csv", [(first, wrong(truth, first))]),
            f"again.csv line 2: '{first}' already has the label '{truth[first]}' (from same.csv line 2)")


def test_an_image_changed_since_init_is_refused(project, tmp_path):
    project, truth = project
    first, second = requested(project)[:2]
    changed = project.target_file(first)
    original = changed.read_bytes()
    changed.write_bytes(original[:-1] + bytes([original[-1] ^ 1]))
    try:
        refused(project, write_csv(tmp_path / "l.csv", [(second, truth[second]), (first, truth[first])]),
                f"l.csv line 3: '{first}' changed since init")
    finally:
        changed.write_bytes(original)
    assert ingest(project, write_csv(tmp_path / "l.csv", [(first, truth[first])])).new == 1


def test_a_partial_set_is_taken_and_the_rest_stays_requested(project, tmp_path):
    project, truth = project
    open_now = requested(project)
    # to_label.csv itself, with the label column filled in for two rows: the others have no label yet.
    rows = (project.folder / "to_label.csv").read_text(encoding="utf-8").splitlines()
    for i in (1, 3):
        path = rows[i].split(",")[0]
        rows[i] = rows[i].replace(f"{path},,", f"{path},{truth[path]},")
    filled = tmp_path / "to_label_filled.csv"
    filled.write_text("\n".join(rows) + "\n", encoding="utf-8")
    result = ingest(project, filled)
    assert (result.new, result.without_label, result.still_requested) == (2, 3, 3)
    assert requested(project) == [p for i, p in enumerate(open_now) if i not in (0, 2)]
    labels = project.labels()
    assert {p: labels[p]["label"] for p in (open_now[0], open_now[2])} == {p: truth[p] for p in (open_now[0], open_now[2])}
    assert labels[open_now[2]] == {"label": truth[open_now[2]], "round": 2, "file": "to_label_filled.csv", "line": 4}
    # Ingesting the same file again adds nothing.
    again = ingest(project, filled)
    assert (again.new, again.already) == (0, 2) and project.labels() == labels
    # The query refuses to go on with images unlabelled, unless told to.
    assert cli("query", project.folder) == 2
    assert project.latest_round() == 2
    assert cli("query", project.folder, "--accept-partial") == 0
    assert project.latest_round() == 3
    assert project.load_model(2)["labeled"] == project.labeled_through(2) and len(project.labeled_through(2)) == 7
    returned = [p for i, p in enumerate(open_now) if i not in (0, 2)]
    late = write_csv(tmp_path / "late.csv", [(returned[0], truth[returned[0]])])
    if returned[0] not in project.request(3)["paths"]:
        refused(project, late, "was requested in round 2, which is closed")


def test_label_studio_exports_full_and_min(project, tmp_path):
    project, truth = project
    export = label_studio_export(tmp_path / "export.json", project, truth)
    tasks = json.loads(export.read_text(encoding="utf-8"))
    tasks[1]["annotations"] = []  # nobody annotated task 2: it stays requested
    tasks[2]["annotations"].append({"was_cancelled": True, "result": [
        {"from_name": "label", "type": "choices", "value": {"choices": [wrong(truth, tasks[2]["data"]["path"])]}}]})
    export.write_text(json.dumps(tasks), encoding="utf-8")
    result = ingest(project, export)
    assert (result.new, result.without_label, result.still_requested) == (4, 1, 1)
    assert all(project.labels()[t["data"]["path"]]["label"] == truth[t["data"]["path"]]
               for i, t in enumerate(tasks) if i != 1)
    # JSON-MIN: the chooser's name is a key of each task, the image given by Label Studio's local-files URL.
    last = tasks[1]["data"]["path"]
    minimal = tmp_path / "min.json"
    minimal.write_text(json.dumps([{"id": 7, "image": f"/data/local-files/?d={last}", "label": truth[last]}]))
    assert ingest(project, minimal).new == 1 and requested(project) == []


def test_label_studio_refusals_name_the_task(project, tmp_path):
    project, truth = project
    export = label_studio_export(tmp_path / "export.json", project, truth)
    tasks = json.loads(export.read_text(encoding="utf-8"))
    path = tasks[3]["data"]["path"]
    tasks[3]["annotations"].append({"result": [{"from_name": "label", "type": "choices",
                                                "value": {"choices": [wrong(truth, path)]}}]})
    tasks[0]["annotations"][0]["result"][0]["value"]["choices"] = ["dog"]
    export.write_text(json.dumps(tasks), encoding="utf-8")
    with pytest.raises(ValueError, match=r"export.json task 4 \(id 104\): its annotations disagree"):
        ingest(project, export)
    del tasks[3]["annotations"][1]
    export.write_text(json.dumps(tasks), encoding="utf-8")
    refused(project, export, "export.json task 1 (id 101): unknown class 'dog'")
    broken = tmp_path / "broken.json"
    broken.write_text('[{"data": {"path": "a.png"}},\n  {"data": ]', encoding="utf-8")
    with pytest.raises(ValueError, match="broken.json line 2: not valid JSON"):
        read_label_file(broken)


def test_csv_forms_and_errors(project, tmp_path):
    project, truth = project
    first = requested(project)[0]
    headerless = tmp_path / "plain.csv"
    headerless.write_text(f"{first},{truth[first]}\n", encoding="utf-8")
    assert [(e.where, e.path, e.label) for e in read_label_file(headerless)] == [("plain.csv line 1", first, truth[first])]
    absolute = write_csv(tmp_path / "abs.csv", [(str(project.target_file(first)), truth[first])])
    assert ingest(project, absolute).new == 1
    bad = tmp_path / "bad.csv"
    bad.write_text("path,class\nx.png,3\n", encoding="utf-8")
    with pytest.raises(ValueError, match="bad.csv line 1: the header has a 'path' column but no 'label' column"):
        read_label_file(bad)
    short = tmp_path / "short.csv"
    short.write_text("path,label\nx.png\n", encoding="utf-8")
    with pytest.raises(ValueError, match="short.csv line 2: expected the columns path,label"):
        read_label_file(short)
    assert cli("ingest", project.folder, tmp_path / "missing.csv") == 2


def test_init_and_commands_refuse_bad_input(example, tmp_path, capsys):
    assert cli("status", tmp_path / "nothing") == 2
    assert "is not a labelling project (no project.json" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        cli("init", tmp_path / "p", "--source-dir", tmp_path / "absent", "--target-dir", example / "target")
    assert "--source-dir: no such folder" in capsys.readouterr().err
    (tmp_path / "empty").mkdir()
    assert cli("init", tmp_path / "p", "--source-dir", example / "source", "--target-dir", tmp_path / "empty",
               "--model", "lenet") == 2
    assert "--target-dir" in capsys.readouterr().err and not (tmp_path / "p" / "project.json").exists()
    with pytest.raises(SystemExit):
        cli("init", tmp_path / "p", "--source-dir", example / "source", "--target-dir", example / "target",
            "--strategy", "guess")
    assert "argument --strategy: unknown strategy 'guess'" in capsys.readouterr().err
    inside = example / "target" / "project"
    assert cli("init", inside, "--source-dir", example / "source", "--target-dir", example / "target",
               "--model", "lenet") == 2
    assert "lies inside --target-dir" in capsys.readouterr().err and not inside.exists()
    project = new_project(tmp_path / "ok", example)
    assert cli("ingest", project.folder, write_csv(tmp_path / "l.csv", [("img-00000.png", "3")])) == 2
    assert "nothing was requested yet" in capsys.readouterr().err
    # init again: the same settings change nothing, others are refused.
    assert new_project(tmp_path / "ok", example).settings == Project.open(tmp_path / "ok").settings
    assert cli("init", project.folder, "--source-dir", example / "source", "--target-dir", example / "target",
               "--test-dir", example / "test", "--preset", "tiny", "--model", "lenet", "--budget", "7") == 2
    assert "already exists with other settings (budget: 5 -> 7" in capsys.readouterr().err


def test_ignore_unrequested_passes_over_other_target_images_only(project, tmp_path):
    project, truth = project
    everything = write_csv(tmp_path / "answers.csv", sorted(truth.items()))
    refused(project, everything, "refused 55 line(s)")
    with_typo = write_csv(tmp_path / "typo.csv", sorted(truth.items()) + [("img-99999.png", "1")])
    refused(project, with_typo, "refused 56 line(s)", "and 36 more")
    with pytest.raises(IngestError, match=r"refused 1 line\(s\).*\n  typo.csv line 62"):
        ingest(project, with_typo, ignore_unrequested=True)
    result = ingest(project, everything, ignore_unrequested=True)
    assert (result.new, result.not_requested, result.still_requested) == (5, 55, 0)
    assert all(project.labels()[p]["label"] == truth[p] for p in project.request(2)["paths"])


def test_class_keys_of_the_page():
    from clue_ext.label.page import class_keys

    assert class_keys([str(d) for d in range(10)]) == {str(d): str(d) for d in range(10)}
    assert class_keys(["cat", "dog", "Fox"]) == {"cat": "c", "dog": "d", "Fox": "f"}
    assert class_keys(["cat", "cow", "dog"]) == {"cat": "1", "cow": "2", "dog": "3"}
    assert class_keys(["jaguar", "lynx"]) == {"jaguar": "1", "lynx": "2"}  # j moves to the next image
    assert len(class_keys([f"c{i}" for i in range(12)])) == 10  # the rest are chosen in the list


def test_query_refuses_when_target_images_are_gone(project, tmp_path, capsys):
    project, truth = project
    first = requested(project)[0]
    assert ingest(project, write_csv(tmp_path / "one.csv", [(first, truth[first])])).new == 1
    gone = project.target_file(project.targets()[7].path)
    hidden = gone.with_name(".hidden-" + gone.name)
    gone.rename(hidden)
    try:
        assert cli("query", project.folder, "--accept-partial") == 2
    finally:
        hidden.rename(gone)
    assert f"no longer holds the images recorded at init: {project.targets()[7].path} (missing)" in \
        capsys.readouterr().err
    assert project.latest_round() == 2


def test_init_from_scratch_fine_tunes(example, tmp_path):
    assert cli("init", tmp_path / "p", "--source-dir", example / "source", "--target-dir", example / "target",
               "--preset", "tiny", "--model", "lenet", "--init", "scratch") == 0
    config = Project.open(tmp_path / "p").config
    assert (config.init, config.da_methods, config.strategies) == ("scratch", ("ft",), ("clue",))


def test_example_folders_are_written_whole(example, tmp_path_factory, tmp_path):
    cache = tmp_path_factory.getbasetemp() / "label_digits_cache"
    assert sorted(p.name for p in example.iterdir()) == ["answers.csv", "source", "target", "test"]
    assert sorted(p.name for p in (example / "source").iterdir()) == [str(d) for d in range(10)]
    assert len(answers(example)) == len(list((example / "target").iterdir())) == 60
    (tmp_path / "left.partial").mkdir()
    (tmp_path / "left.partial" / "stale.png").write_bytes(b"from a run cut short")
    counts = write_example(tmp_path / "left", source_per_class=1, target_images=2, test_per_class=1, cache_dir=cache)
    assert counts == {"source": 10, "target": 2, "test": 10} and not (tmp_path / "left.partial").exists()
    assert not (tmp_path / "left" / "stale.png").exists()
    with pytest.raises(ValueError, match="exists and is not empty"):
        write_example(tmp_path / "left", cache_dir=cache)
