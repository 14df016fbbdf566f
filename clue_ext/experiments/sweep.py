"""``--sweep FIELD=v1,v2,...``: one experiment per value of a numeric config field, as one grid.

Each value runs into its own sub-folder ``FIELD=VALUE`` of the output folder:
a complete experiment folder, resumed like any other, sharing one model
cache (the source and round-0 models do not depend on the swept field, or
the cache tells them apart). Once they are done the sweep's folder gets
``results.jsonl`` (every row with ``sweep_field`` and ``sweep_value``),
``summary.md`` (one table per value) and ``sweep.png`` (accuracy against
labels, one line per value). Sweeping ``budget`` changes the rounds so that
the total number of labels stays the config's (as in the paper's Fig. 4c).
"""

from __future__ import annotations

import dataclasses
import io
import typing
from pathlib import Path
from typing import NamedTuple, Optional, Union

from .._atomic import atomic_write
from . import storage
from .configs import GRID_FIELDS, ExperimentConfig, RunOptions
from .reporting import accuracy_stats, summary_markdown

# Fields that decide which data the experiment sees: a sweep compares
# settings on the same data, so these are refused.
DATA_FIELDS = ("data_seed", "limit_source", "limit_pool", "limit_test", "test_fraction")

Number = Union[int, float]


class SweepSpec(NamedTuple):
    field: str
    values: tuple


def numeric_fields() -> dict[str, type]:
    """{field: int or float} of the ExperimentConfig fields a sweep may vary."""
    hints = typing.get_type_hints(ExperimentConfig)
    out = {}
    for f in dataclasses.fields(ExperimentConfig):
        kind = hints[f.name]
        args = [a for a in typing.get_args(kind) if a is not type(None)]
        base = args[0] if typing.get_origin(kind) is Union and len(args) == 1 else kind
        if base in (int, float) and f.name not in DATA_FIELDS and f.name not in GRID_FIELDS:
            out[f.name] = base
    return out


def parse_sweep(text: str) -> SweepSpec:
    """``FIELD=v1,v2,...`` as a SweepSpec; ValueError naming what is wrong."""
    field, sep, values_text = text.partition("=")
    field = field.strip().replace("-", "_")
    if not sep or not field:
        raise ValueError(f"must be FIELD=v1,v2,..., got {text!r}")
    if field in DATA_FIELDS:
        raise ValueError(f"{field} changes the data the strategies are compared on; sweep a setting instead")
    if field in GRID_FIELDS:
        raise ValueError(f"{field} is part of the grid (set it with --{field.replace('_', '-')}), not a setting")
    kinds = numeric_fields()
    if field not in kinds:
        what = "not numeric" if field in {f.name for f in dataclasses.fields(ExperimentConfig)} else "not a config field"
        raise ValueError(f"{field} is {what}; numeric fields: {', '.join(sorted(kinds))}")
    values = []
    for part in (p.strip() for p in values_text.split(",")):
        try:
            value = kinds[field](part)
        except ValueError:
            raise ValueError(f"{field} takes {kinds[field].__name__} values, got {part!r}") from None
        values.append(value)
    if not values or values_text.strip() == "":
        raise ValueError(f"lists no value for {field}")
    if len(set(values)) != len(values):
        raise ValueError(f"lists a value of {field} more than once: {values_text!r}")
    return SweepSpec(field, tuple(values))


def config_for(config: ExperimentConfig, field: str, value: Number) -> ExperimentConfig:
    """`config` with `field` = `value` (and, for budget, the rounds keeping the total labels)."""
    changes = {field: value}
    if field == "budget":
        rounds = config.total_labels / value
        if rounds != int(rounds) or rounds < 1:
            raise ValueError(f"budget {value} does not divide the {config.total_labels} labels of "
                             f"{config.rounds} rounds x {config.budget}")
        changes["rounds"] = int(rounds)
        changes["report_labels"] = ()
    return config.replace(**changes)


def folder_name(field: str, value: Number) -> str:
    return f"{field}={value:g}" if isinstance(value, float) else f"{field}={value}"


class SweepResult(NamedTuple):
    rows: list
    out_dir: Path
    configs: dict


def run_sweep(config: ExperimentConfig, options: RunOptions, spec: SweepSpec, *,
              metadata: Optional[dict] = None) -> SweepResult:
    """Runs (or resumes) one experiment per value of the sweep, then writes the sweep's reports."""
    from .runner import run_experiment

    out_dir = Path(options.out_dir)
    if (out_dir / "config.json").exists():
        raise ValueError(f"{out_dir} holds a single experiment (config.json): give the sweep its own --out")
    configs = {value: config_for(config, spec.field, value) for value in spec.values}  # all checked first
    cache = options.cache_dir if options.cache_dir is not None else out_dir / "cache"
    rows = []
    for value, sub_config in configs.items():
        sub_options = dataclasses.replace(options, out_dir=out_dir / folder_name(spec.field, value), cache_dir=cache)
        result = run_experiment(sub_config, sub_options,
                                metadata={**(metadata or {}), "sweep": {"field": spec.field, "value": value}})
        rows += [{**row, "sweep_field": spec.field, "sweep_value": value} for row in result.rows]
    write_sweep_reports(out_dir, rows, configs, spec.field)
    return SweepResult(rows, out_dir, configs)


def write_sweep_reports(out_dir: Path, rows: list, configs: dict, field: str) -> None:
    storage.write_jsonl(out_dir / "results.jsonl", rows)
    parts = [f"# Sweep of {field}", ""]
    for value, sub_config in configs.items():
        mine = [r for r in rows if r["sweep_value"] == value]
        table = summary_markdown(mine, sub_config, title=f"{field} = {value:g}")
        folder = folder_name(field, value)
        table = table.replace("Full curves: `accuracy.png`; every number: `results.jsonl`.",
                              f"Curves: `{folder}/accuracy.png`; every number: `{folder}/results.jsonl`.")
        parts.append(table.replace("# ", "## ", 1))
    parts.append(f"Every value's curve, per strategy: `sweep.png`; every row with its {field}: `results.jsonl`.\n")
    storage.write_text(out_dir / "summary.md", "\n".join(parts))
    plot_sweep(rows, out_dir / "sweep.png", field)


def plot_sweep(rows: list, path: Path, field: str) -> None:
    """One panel per (DA method, strategy), one line per swept value (mean over runs)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    values = list(dict.fromkeys(r["sweep_value"] for r in rows))
    panels = list(dict.fromkeys((r["da_method"], r["strategy"]) for r in rows))
    figure = Figure(figsize=(5.0 * max(1, len(panels)), 4.0), layout="constrained")
    FigureCanvasAgg(figure)
    axes = figure.subplots(1, max(1, len(panels)), squeeze=False)[0]
    for ax, (da_method, strategy) in zip(axes, panels):
        for value in values:
            stats = accuracy_stats([r for r in rows if r["sweep_value"] == value]).get((da_method, strategy))
            if not stats:
                continue
            labels = list(stats)
            ax.plot(labels, [stats[n].mean for n in labels], marker="o", markersize=3, label=f"{field} = {value:g}")
        ax.set_title(f"{strategy} ({da_method})")
        ax.set_xlabel("target labels")
        ax.set_ylabel("target test accuracy (%)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize="small")
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=120)
    atomic_write(Path(path), lambda handle: handle.write(buffer.getvalue()), binary=True)
