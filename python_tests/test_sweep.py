"""--sweep FIELD=v1,...: one experiment per value, resumable, reported together."""

import json

import pytest

from clue_ext.experiments import get_preset
from clue_ext.experiments.__main__ import main
from clue_ext.experiments.sweep import config_for, parse_sweep

TINY = get_preset("tiny").config
pytestmark = pytest.mark.usefixtures("single_thread")


def sweep_args(out, cache, spec, *extra):
    return ["--preset", "tiny", "--rounds", "2", "--runs", "1", "--epochs", "1", "--strategies", "clue",
            "--da", "ft", "--out", str(out), "--cache-dir", str(cache), "--quiet", "--sweep", spec, *extra]


def rows_of(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


@pytest.mark.parametrize("text,message", [
    ("foo=1,2", "foo is not a config field"),
    ("model=1", "model is not numeric"),
    ("temperature=0.1,hot", "temperature takes float values, got 'hot'"),
    ("epochs=1.5", "epochs takes int values, got '1.5'"),
    ("limit_pool=100,200", "limit_pool changes the data"),
    ("data-seed=1", "data_seed changes the data"),
    ("runs=1,2", "runs is part of the grid"),
    ("temperature", "must be FIELD=v1,v2"),
    ("temperature=1,1", "more than once"),
])
def test_bad_sweep_specs_are_refused(text, message, capsys):
    with pytest.raises(ValueError, match=message):
        parse_sweep(text)
    with pytest.raises(SystemExit) as exit_info:
        main(["--preset", "tiny", "--sweep", text])
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err


def test_budget_sweep_keeps_the_total_labels():
    assert parse_sweep("budget=5,10,20").values == (5, 10, 20)
    for budget in (5, 10, 20):
        config = config_for(TINY, "budget", budget)
        assert config.budget == budget and config.total_labels == TINY.total_labels
    with pytest.raises(ValueError, match="does not divide"):
        config_for(TINY, "budget", 7)


def test_sweep_rows_carry_the_value_and_a_resumed_sweep_keeps_what_it_had(tmp_path):
    out, cache = tmp_path / "sweep", tmp_path / "cache"
    assert main(sweep_args(out, cache, "temperature=0.5")) == 0
    first = rows_of(out / "temperature=0.5" / "results.jsonl")
    # A larger sweep into the same folder: the finished value is read back, not run again
    # (its rows, timings included, are the same), and the new value runs.
    assert main(sweep_args(out, cache, "temperature=0.5,4")) == 0
    assert rows_of(out / "temperature=0.5" / "results.jsonl") == first
    rows = rows_of(out / "results.jsonl")
    assert {(r["sweep_field"], r["sweep_value"]) for r in rows} == {("temperature", 0.5), ("temperature", 4.0)}
    assert len(rows) == 2 * 3  # rounds 0, 1, 2 per value
    summary = (out / "summary.md").read_text()
    assert "## temperature = 0.5" in summary and "## temperature = 4" in summary
    assert (out / "sweep.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_budget_sweep_runs_the_same_labels_in_more_rounds(tmp_path):
    out = tmp_path / "sweep"
    assert main(sweep_args(out, tmp_path / "cache", "budget=5,10")) == 0
    rows = rows_of(out / "results.jsonl")
    for budget, rounds in ((5, 4), (10, 2)):
        mine = [r for r in rows if r["sweep_value"] == budget]
        assert max(r["round"] for r in mine) == rounds
        assert max(r["n_labels"] for r in mine) == 20


def test_a_sweep_will_not_write_over_a_single_experiment(tmp_path):
    out = tmp_path / "single"
    out.mkdir()
    (out / "config.json").write_text("{}")
    assert main(sweep_args(out, tmp_path / "cache", "temperature=1,2")) == 2
