"""Active DA experiments: the loop of Algorithm 1 over strategies x DA methods x runs.

Command line: ``python -m clue_ext.experiments --help``. From Python::

    from clue_ext.experiments import PRESETS, RunOptions, run_experiment
    config = PRESETS["synth-mnist"].config.replace(rounds=3)
    result = run_experiment(config, RunOptions(out_dir="runs/quick"))
"""

from .configs import ExperimentConfig, RunOptions
from .presets import DEFAULT_PRESET, PRESETS, Preset, get_preset
from .runner import ConfigMismatchError, ExperimentResult, run_experiment

__all__ = [
    "DEFAULT_PRESET",
    "PRESETS",
    "ConfigMismatchError",
    "ExperimentConfig",
    "ExperimentResult",
    "Preset",
    "RunOptions",
    "get_preset",
    "run_experiment",
]
