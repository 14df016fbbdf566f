"""The experiment runner and CLI on the `tiny` preset: outputs, resume, config checks, flags."""

import json

import pytest

from clue_ext.adapt.mme import MME
from clue_ext.data import load_shift
from clue_ext.experiments import ConfigMismatchError, RunOptions, get_preset, run_experiment
from clue_ext.experiments.__main__ import main
from clue_ext.experiments.reporting import summary_markdown
from clue_ext.strategies import available_strategies

ROW_KEYS = {"strategy", "da_method", "run", "round", "n_labels", "accuracy", "query_seconds"}
TINY = get_preset("tiny").config


pytestmark = pytest.mark.usefixtures("single_thread")


@pytest.fixture(scope="module")
def data_cache(tmp_path_factory):
    return tmp_path_factory.mktemp("clue_data")


@pytest.fixture(scope="module")
def shift(data_cache):
    return load_shift("synth", "mnist", cache_dir=data_cache)


@pytest.fixture(scope="module")
def model_cache(tmp_path_factory):
    # Shared by the tests' output folders, as --cache-dir would be.
    return tmp_path_factory.mktemp("clue_models")


def options(out_dir, model_cache, **kwargs):
    return RunOptions(out_dir=out_dir, cache_dir=model_cache, progress=False, **kwargs)


def measurements(rows):
    return [(r["da_method"], r["strategy"], r["run"], r["round"], r["n_labels"], r["accuracy"]) for r in rows]


def read_rows(out_dir):
    with open(out_dir / "results.jsonl", encoding="utf-8") as handle:
        return [json.loads(line) for line in handle]


@pytest.fixture(scope="module")
def full_tiny(tmp_path_factory, shift, model_cache):
    """Every strategy x ft/mme/dann, 2 rounds of 10 labels: the whole `tiny` preset."""
    out = tmp_path_factory.mktemp("tiny_full")
    return run_experiment(TINY, options(out, model_cache), shift=shift), out


def test_tiny_preset_runs_every_strategy_and_da_method(full_tiny):
    result, out = full_tiny
    rows = read_rows(out)
    assert rows == result.rows
    assert all(ROW_KEYS <= row.keys() for row in rows)
    grid = {(r["da_method"], r["strategy"], r["run"], r["round"]) for r in rows}
    assert grid == {(d, s, 0, k) for d in ("ft", "mme", "dann") for s in available_strategies() for k in (0, 1, 2)}
    assert len(rows) == len(grid)
    for row in rows:
        assert row["n_labels"] == 10 * row["round"]
        assert 0.0 <= row["accuracy"] <= 100.0
        assert row["query_seconds"] >= 0.0
    # Round 0 is shared by every strategy of a (DA method, run): one start, a paired comparison.
    for da in ("ft", "mme", "dann"):
        assert len({r["accuracy"] for r in rows if r["da_method"] == da and r["round"] == 0}) == 1


def test_outputs_summary_plot_and_config(full_tiny):
    _, out = full_tiny
    summary = (out / "summary.md").read_text()
    assert "| DA | strategy | 0 labels | 10 labels | 20 labels |" in summary
    for name in available_strategies():
        assert f"| mme | {name} |" in summary
    png = (out / "accuracy.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 10_000
    config = json.loads((out / "config.json").read_text())
    assert config["config"]["strategies"] == list(TINY.strategies) and config["identity"] == TINY.identity()


def test_labeled_sets_are_distinct_and_grow_by_the_budget(full_tiny):
    _, out = full_tiny
    records = [json.loads(p.read_text()) for p in (out / "checkpoints").glob("*/*/run0.json")]
    assert len(records) == 3 * len(available_strategies())
    for record in records:
        assert len(record["labeled"]) == 20 == len(set(record["labeled"]))
        # Finished units keep their rows but drop their model state by default.
        assert record["state_file"] is None and record["round"] == 2
    assert not list((out / "checkpoints").glob("*/*/*.pt"))


def test_same_seed_same_results_and_a_finished_folder_is_not_rerun(full_tiny, shift, model_cache, tmp_path):
    result, out = full_tiny
    config = TINY.replace(strategies=("uniform", "clue", "badge"), da_methods=("mme",))
    again = run_experiment(config, options(tmp_path, model_cache), shift=shift)
    expected = [m for m in measurements(result.rows) if m[0] == "mme" and m[1] in config.strategies]
    assert sorted(measurements(again.rows)) == sorted(expected)
    before = (out / "results.jsonl").read_text()
    rerun = run_experiment(TINY, options(out, model_cache), shift=shift)  # everything done: nothing to do
    assert (out / "results.jsonl").read_text() == before and rerun.rows == result.rows


class Interrupt(Exception):
    pass


def test_resume_after_an_interruption_loses_and_repeats_nothing(shift, model_cache, tmp_path, monkeypatch):
    config = TINY.replace(strategies=("entropy", "clue"), da_methods=("mme",), rounds=3)
    reference = run_experiment(config, options(tmp_path / "straight", model_cache), shift=shift)

    calls = {"n": 0}
    original = MME.train_round

    def crash_on_fifth_update(self, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 5:  # clue's round 2, after its query: mid-round
            raise Interrupt()
        return original(self, *args, **kwargs)

    out = tmp_path / "interrupted"
    monkeypatch.setattr(MME, "train_round", crash_on_fifth_update)
    with pytest.raises(Interrupt):
        run_experiment(config, options(out, model_cache), shift=shift)
    done = read_rows(out)
    assert {(r["strategy"], r["round"]) for r in done} == {
        ("entropy", 0), ("entropy", 1), ("entropy", 2), ("entropy", 3), ("clue", 0), ("clue", 1)}
    monkeypatch.setattr(MME, "train_round", original)

    resumed = run_experiment(config, options(out, model_cache), shift=shift)
    assert measurements(resumed.rows) == measurements(reference.rows)
    assert measurements(read_rows(out)) == measurements(reference.rows)
    labeled = json.loads((out / "checkpoints/mme/clue/run0.json").read_text())["labeled"]
    straight = json.loads((tmp_path / "straight/checkpoints/mme/clue/run0.json").read_text())["labeled"]
    assert labeled == straight


def test_more_rounds_extend_kept_checkpoints(shift, model_cache, tmp_path):
    config = TINY.replace(strategies=("margin",), da_methods=("ft",), rounds=1)
    out = tmp_path / "grow"
    run_experiment(config, options(out, model_cache, keep_checkpoints=True), shift=shift)
    grown = run_experiment(config.replace(rounds=2), options(out, model_cache), shift=shift)
    straight = run_experiment(config.replace(rounds=2), options(tmp_path / "straight", model_cache), shift=shift)
    assert measurements(grown.rows) == measurements(straight.rows)
    with pytest.raises(ValueError, match="--keep-checkpoints"):
        run_experiment(config.replace(rounds=3), options(out, model_cache), shift=shift)


def test_a_changed_config_in_the_same_folder_is_refused(full_tiny, shift, model_cache):
    _, out = full_tiny
    with pytest.raises(ConfigMismatchError, match="epochs: 1 -> 2"):
        run_experiment(TINY.replace(epochs=2), options(out, model_cache), shift=shift)


def test_budget_beyond_the_pool_is_refused(shift, model_cache, tmp_path):
    with pytest.raises(ValueError, match="exceeds the target pool"):
        run_experiment(TINY.replace(rounds=20), options(tmp_path, model_cache), shift=shift)


def test_summary_marks_the_best_mean_per_column():
    rows = [
        {"da_method": "mme", "strategy": s, "run": r, "round": k, "n_labels": 10 * k, "accuracy": acc,
         "query_seconds": 0.1}
        for s, base in (("uniform", 50.0), ("clue", 60.0))
        for r in (0, 1)
        for k, acc in ((0, 40.0), (1, base + r), (2, base + 10 + r))
    ]
    text = summary_markdown(rows, TINY.replace(strategies=("uniform", "clue"), rounds=2))
    assert "| mme | clue | 40.0 ± 0.0 | **60.5 ± 0.7** | **70.5 ± 0.7** | 2 |" in text
    assert "| mme | uniform | 40.0 ± 0.0 | 50.5 ± 0.7 | 60.5 ± 0.7 | 2 |" in text


# ------------------------------------------------------------------------- the CLI


def test_cli_done_when_command(shift, data_cache, model_cache, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("CLUE_EXT_CACHE", str(data_cache))
    out = tmp_path / "cli"
    status = main([
        "--preset", "tiny", "--strategies", "uniform,entropy,margin,coreset,badge,aada,clue", "--da", "ft,mme,dann",
        "--rounds", "2", "--budget", "10", "--runs", "1", "--epochs", "1", "--out", str(out),
        "--cache-dir", str(model_cache), "--quiet",
    ])
    assert status == 0
    printed = capsys.readouterr().out
    assert "target test accuracy" in printed and "mme   clue" in printed and str(out) in printed
    assert {p.name for p in out.iterdir()} >= {"results.jsonl", "summary.md", "accuracy.png", "config.json"}
    assert len(read_rows(out)) == 7 * 3 * 3


@pytest.mark.parametrize("argv, message", [
    (["--strategies", "clue,bald"], "argument --strategies: unknown strategy 'bald'"),
    (["--strategies", "clue,clue"], "argument --strategies: lists a strategy more than once"),
    (["--da", "mme,dirt-t"], "argument --da: unknown DA method 'dirt-t'"),
    (["--rounds", "0"], "argument --rounds: must be an integer >= 1"),
    (["--budget", "ten"], "argument --budget: must be an integer"),
    (["--runs", "-1"], "argument --runs: must be an integer >= 1"),
    (["--epochs", "1.5"], "argument --epochs: must be an integer"),
    (["--temperature", "0"], "argument --temperature: must be a positive finite number"),
    (["--lr", "nan"], "argument --lr: must be a positive finite number"),
    (["--preset", "imagenet"], "argument --preset: invalid choice"),
    (["--source", "svhn", "--target", "sketch"], "argument --source/--target: unknown shift svhn->sketch"),
    (["--device", "tpu"], "argument --device"),
    (["--weights", "/no/such/file.pth"], "argument --weights: no such file"),
    (["--model", "resnet9000"], "argument --model: unknown model 'resnet9000'"),
    (["--epoch-length", "forever"], "argument --epoch-length: invalid choice"),
    (["--source-val-fraction", "0.95"], "argument --source-val-fraction: must be in [0.0, 0.9]"),
    (["--source-dir", "/no/such/folder"], "argument --source-dir: no such folder"),
    (["--test-fraction", "0.2"], "argument --test-fraction: only applies with --source-dir/--target-dir"),
])
def test_cli_rejects_bad_flags_naming_them(argv, message, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err


def test_cli_flags_override_the_preset():
    from clue_ext.experiments.cli import parse

    _, preset, config, run_options = parse(["--preset", "digits", "--strategies", "all", "--da", "MME",
                                            "--rounds", "4", "--temperature", "0.5", "--out", "x"])
    assert preset.name == "digits" and config.source == "svhn" and config.rounds == 4
    assert config.strategies == tuple(available_strategies()) and config.da_methods == ("mme",)
    assert config.temperature == 0.5 and config.budget == 10 and str(run_options.out_dir) == "x"
    _, _, default, default_options = parse([])
    assert default.shift_name == "synth->mnist" and str(default_options.out_dir).endswith("synth-mnist")
    _, _, changed, _ = parse(["--epoch-length", "pool", "--source-val-fraction", "0", "--model", "ResNet50",
                              "--preset", "office"])
    assert (changed.epoch_length, changed.source_val_fraction, changed.model) == ("pool", 0.0, "resnet50")


def test_paper_presets_follow_the_authors():
    for name in ("digits", "office", "domainnet-rc", "domainnet-cs", "domainnet-sp", "domainnet-cq"):
        config = get_preset(name).config
        assert {"ft", "mme", "dann"} <= set(config.da_methods), name
        assert {"aada", "badge", "clue", "uniform"} <= set(config.strategies), name
        assert config.epoch_length == "shortest" and config.uda_step_size is None, name
        assert not config.augment_target and config.source_val_fraction > 0, name
        assert (config.uda_src_weight, config.uda_unsup_weight, config.uda_cent_weight) == (1.0, None, None), name
    assert get_preset("digits").config.source_val_fraction == 0.2
    assert get_preset("domainnet-cs").config.source_val_fraction == 0.1


def test_cli_reports_missing_data_and_interruptions_without_a_traceback(tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("CLUE_EXT_DATA", raising=False)
    assert main(["--preset", "digits", "--out", str(tmp_path / "digits"), "--quiet"]) == 2
    assert "pass data_root=<folder> (or set $CLUE_EXT_DATA)" in capsys.readouterr().err

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr("clue_ext.experiments.__main__.run_experiment", interrupted)
    assert main(["--preset", "tiny", "--out", str(tmp_path / "tiny"), "--quiet"]) == 130
    assert "run the same command again to resume" in capsys.readouterr().err
