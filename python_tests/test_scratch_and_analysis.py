"""Learning from scratch (`init="scratch"`, `--init scratch`) and the presets of the paper's analyses."""

import pytest

from clue_ext.adapt.ft import FineTune
from clue_ext.data import load_shift
from clue_ext.experiments import RunOptions, get_preset, run_experiment
from clue_ext.experiments import round_steps as round_steps_module
from clue_ext.experiments import stages as stages_module
from clue_ext.experiments.cli import parse
from clue_ext.experiments.configs import ExperimentConfig
from clue_ext.experiments.data_views import limit_shift
from clue_ext.experiments.presets import PRESETS
from clue_ext.experiments.sweep import config_for, parse_sweep
from clue_ext.experiments.training import build_initial_model, evaluate_accuracy
from clue_ext.experiments.seeds import source_seed

pytestmark = pytest.mark.usefixtures("single_thread")

SCRATCH = get_preset("tiny").config.replace(init="scratch", da_methods=("ft",), strategies=("uniform", "clue"),
                                            epochs=3)


@pytest.fixture(scope="module")
def shift(tmp_path_factory):
    return load_shift("synth", "mnist", cache_dir=tmp_path_factory.mktemp("clue_data"))


def test_scratch_never_trains_on_or_hands_out_source_data(shift, tmp_path, monkeypatch):
    def no_source_training(*args, **kwargs):
        raise AssertionError("a from-scratch run trained a source model")

    monkeypatch.setattr(stages_module, "train_source_model", no_source_training)
    sources_seen = []
    original_round = FineTune.train_round

    def spy_round(self, model, source_train, *args, **kwargs):
        sources_seen.append(source_train)
        return original_round(self, model, source_train, *args, **kwargs)

    monkeypatch.setattr(FineTune, "train_round", spy_round)
    contexts = []
    original_create = round_steps_module.QueryContext.create

    def spy_context(*args, **kwargs):
        contexts.append(kwargs.get("source_train"))
        return original_create(*args, **kwargs)

    monkeypatch.setattr(round_steps_module.QueryContext, "create", spy_context)
    result = run_experiment(SCRATCH, RunOptions(out_dir=tmp_path / "out", progress=False), shift=shift)

    untrained = build_initial_model(SCRATCH, shift, source_seed(SCRATCH.seed), "cpu")
    start = evaluate_accuracy(untrained, limited(SCRATCH, shift).target_test, "cpu")
    round0 = [r["accuracy"] for r in result.rows if r["round"] == 0]
    assert round0 == [round(start, 4)] * 2
    assert len(sources_seen) == 4 and all(s is None for s in sources_seen)
    assert len(contexts) == 4 and all(s is None for s in contexts)
    later = [r for r in result.rows if r["round"] == 2]
    assert [r["n_labels"] for r in later] == [20, 20]


def limited(config, shift):
    # The runner evaluates on the preset's limited test split, seeded by data_seed.
    return limit_shift(shift, config.limit_source, config.limit_pool, config.limit_test, config.data_seed)


def test_scratch_differs_from_source_init_and_keeps_old_identities(shift, tmp_path):
    source = SCRATCH.replace(init="source")
    assert "init" not in source.identity_fields()  # folders written before the field existed still resume
    assert SCRATCH.identity() != source.identity()
    assert stages_module.source_key(SCRATCH) != stages_module.source_key(source)
    # Changing source training settings cannot matter when there is none.
    assert stages_module.source_key(SCRATCH) == stages_module.source_key(SCRATCH.replace(source_epochs=9))


@pytest.mark.parametrize("changes, message", [
    ({"init": "imagenet"}, "init must be one of ('source', 'scratch')"),
    ({"init": 3}, "init must be a non-empty string"),
    ({"init": "scratch", "da_methods": ("mme",)}, "da_methods must be ('ft',)"),
    ({"init": "scratch", "da_methods": ("ft",), "strategies": ("clue", "aada")}, "strategies ['aada'] need"),
])
def test_bad_init_settings_are_refused(changes, message):
    with pytest.raises(ValueError, match="init") as error:
        ExperimentConfig(**changes)
    assert message in str(error.value)


def test_cli_init_scratch_takes_ft_and_drops_source_strategies():
    _, _, config, _ = parse(["--preset", "digits", "--init", "scratch"])
    assert config.from_scratch and config.da_methods == ("ft",)
    assert "aada" in get_preset("digits").config.strategies and "aada" not in config.strategies
    _, _, config, _ = parse(["--init", "scratch", "--strategies", "clue"])
    assert config.strategies == ("clue",)
    with pytest.raises(SystemExit):
        parse(["--init", "scratch", "--da", "mme"])
    _, _, default, _ = parse([])
    assert default.init == "source"


def test_scratch_preset_is_the_papers_from_scratch_comparison():
    config = get_preset("scratch-mnist").config
    assert config.from_scratch and config.da_methods == ("ft",)
    assert {"uniform", "entropy", "margin", "coreset", "badge", "clue"} == set(config.strategies)


def test_analysis_presets_cover_fig4_and_their_sweeps_resolve():
    weighting = get_preset("analysis-weighting").config
    assert {"clue", "clue-margin", "clue-uniform"} <= set(weighting.strategies)
    assert set(get_preset("analysis-da").config.da_methods) == {"ft", "dann", "mme", "mmd", "vada", "ent"}
    for name, field in (("analysis-temperature", "temperature"), ("analysis-budget", "budget")):
        preset = get_preset(name)
        spec = parse_sweep(preset.sweep)
        assert spec.field == field and len(spec.values) >= 3
        totals = {config_for(preset.config, spec.field, v).total_labels for v in spec.values}
        assert totals == {preset.config.total_labels}
        args, _, _, _ = parse(["--preset", name])
        assert args.sweep == spec
        args, _, _, _ = parse(["--preset", name, "--sweep", "lr=0.001,0.01"])
        assert args.sweep.field == "lr"
    analysis = [p for p in PRESETS if p.startswith("analysis-")]
    assert len(analysis) == 4
    for name in analysis:
        config = get_preset(name).config
        assert (config.source, config.target, config.limit_pool) == ("synth", "mnist", None), name
