"""The Active DA loop (Algorithm 1) over a grid of strategies, DA methods and runs.

For each DA method and run, round 0 (the source model after unsupervised
adaptation) is computed once and shared by every strategy; each
(DA method, strategy, run) *unit* then alternates acquisition, model update
and evaluation for ``rounds`` rounds, checkpointing after every round.

Output folder (``RunOptions.out_dir``):

* ``config.json``: the config and its identity; a different identity in the
  same folder is refused (:class:`ConfigMismatchError`) rather than mixed in;
* ``results.jsonl``: one row per (strategy, DA method, run, round), rewritten
  atomically after every round from the unit records;
* ``summary.md`` and ``accuracy.png``: written at the end;
* ``checkpoints/``: the unit records and states (see :mod:`.unit_checkpoint`);
* ``cache/``: source and round-0 models (see :mod:`.stages`).

Running again with the same folder resumes each unit after its last
completed round; with more rounds, strategies, DA methods or runs it extends
the grid (rounds only for units whose state was kept).
"""

from __future__ import annotations

import functools
import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional

import torch
from torch.utils.data import DataLoader
from tqdm.auto import tqdm

from .. import __version__
from ..data import DomainShift, load_folder_shift, load_shift
from ..strategies import get_strategy
from . import storage
from .configs import ExperimentConfig, RunOptions
from .picks_plot import plot_picks, save_round1
from .reporting import sort_rows, write_reports
from .round_steps import INFERENCE_BATCH, build_unit, labeled_source, prepare_shift, select_step, update_step
from .stages import StageCache
from .training import cpu_state
from .unit_checkpoint import UnitCheckpoint, all_records

logger = logging.getLogger(__name__)


class ConfigMismatchError(ValueError):
    """The output folder holds results of a different experiment configuration."""


@dataclass
class ExperimentResult:
    """What :func:`run_experiment` produced."""

    rows: list[dict]
    out_dir: Path
    seconds: float

    @property
    def results_path(self) -> Path:
        return self.out_dir / "results.jsonl"


def run_experiment(config: ExperimentConfig, options: RunOptions, *, metadata: Optional[dict] = None,
                   shift: Optional[DomainShift] = None) -> ExperimentResult:
    """Run (or resume) ``config`` into ``options.out_dir``; see the module docstring.

    Args:
        metadata: extra entries for ``config.json`` (e.g. the preset name).
        shift: run on this already loaded ``DomainShift`` (any, registered or
            not) instead of loading ``config``'s data; ``config.source`` and
            ``config.target`` then only name it. It is not part of the identity:
            resume a folder with the same data. The config's ``limit_*``
            subsampling and source validation split still apply.
    """
    return ExperimentRunner(config, options, metadata=metadata, shift=shift).run()


class ExperimentRunner:
    """Runs one config; see :func:`run_experiment`."""

    def __init__(self, config: ExperimentConfig, options: RunOptions, *, metadata: Optional[dict] = None,
                 shift: Optional[DomainShift] = None):
        if not isinstance(config, ExperimentConfig):
            raise TypeError(f"config must be an ExperimentConfig, got {type(config).__name__}")
        if not isinstance(options, RunOptions):
            raise TypeError(f"options must be RunOptions, got {type(options).__name__}")
        self.config = config
        self.options = options
        self.metadata = dict(metadata or {})
        self.out_dir = Path(options.out_dir)
        self.checkpoint_dir = self.out_dir / "checkpoints"
        self.device = torch.device(options.device)
        self.shift = shift
        self.rows: dict[tuple, dict] = {}
        self._labels: Optional[torch.Tensor] = None

    # ------------------------------------------------------------------ driver

    def run(self) -> ExperimentResult:
        started = time.perf_counter()
        c = self.config
        if self.shift is None:
            c.check_shift_known()
        # Data problems surface here, before anything is written or trained.
        shift = self.shift if self.shift is not None else self._load_shift()
        if not isinstance(shift, DomainShift):
            raise TypeError(f"shift must be a DomainShift, got {type(shift).__name__}")
        self.shift, source_val = prepare_shift(shift, c)
        logger.info("data: %s%s", self.shift.summary(),
                    f" source_val={len(source_val)}" if source_val is not None else "")
        self._check_budget()
        claim_out_dir(self.out_dir, self.config, self.metadata)
        for record in all_records(self.checkpoint_dir):
            self._add_rows(record["rows"])
        stages = StageCache(self.config, self.shift, self.options.resolved_cache_dir, device=self.device,
                            progress=self.options.progress, source_val=source_val)
        for da_method in self.config.da_methods:
            for run in range(self.config.runs):
                # Computed (or read from the cache) only if some unit still needs it.
                start = _Once(functools.partial(stages.round0, da_method, run))
                for strategy in self.config.strategies:
                    self._run_unit(da_method, strategy, run, start)
        rows = sort_rows(self.rows.values(), self.config)
        write_reports(self.out_dir, rows, self.config)
        if self.options.plot_picks:
            plot_picks(self.out_dir, self.config.da_methods, self.config.strategies, seed=self.config.seed)
        seconds = time.perf_counter() - started
        logger.info("done in %.1f s; results in %s", seconds, self.out_dir)
        return ExperimentResult(rows=rows, out_dir=self.out_dir, seconds=seconds)

    def _load_shift(self) -> DomainShift:
        c = self.config
        if c.uses_folders:
            return load_folder_shift(c.source_dir, c.target_dir, model=c.model, test_fraction=c.test_fraction,
                                     seed=c.data_seed, source_name=c.source, target_name=c.target,
                                     progress=self.options.progress)
        return load_shift(c.source, c.target, data_root=self.options.data_root, download=self.options.download,
                          seed=c.data_seed)

    def _check_budget(self) -> None:
        pool = len(self.shift.target_pool)
        if self.config.total_labels > pool:
            raise ValueError(
                f"rounds x budget = {self.config.rounds} x {self.config.budget} = {self.config.total_labels} labels "
                f"exceeds the target pool of {self.shift.name} ({pool} items)"
            )

    # -------------------------------------------------------------------- units

    def _run_unit(self, da_method: str, strategy_name: str, run: int, start: Callable[[], dict]) -> None:
        c = self.config
        checkpoint = UnitCheckpoint(self.checkpoint_dir, da_method, strategy_name, run)
        record = checkpoint.load_record()
        if record is not None and record["round"] >= c.rounds:
            return
        if record is None:
            state = start()
            record = {
                "identity": c.identity(), "da_method": da_method, "strategy": strategy_name, "run": run,
                "round": 0, "labeled": [],
                "rows": [self._row(da_method, strategy_name, run, 0, 0, state["accuracy"], 0.0, state["seconds"])],
            }
        else:
            self._check_record(checkpoint, record)
            state = checkpoint.load_state(record)
            if state is None:
                raise ValueError(
                    f"cannot extend {da_method}/{strategy_name} run {run} beyond round {record['round']}: its model "
                    f"state was dropped when it finished; rerun it in a new --out with --keep-checkpoints"
                )
            logger.info("resuming %s/%s run %d after round %d", da_method, strategy_name, run, record["round"])
        model, method = build_unit(c, self.shift, da_method, run, state, self.device)
        self._add_rows(record["rows"])
        if record["round"] == 0:
            checkpoint.save(record, {"model": cpu_state(model), "da_state": method.state_dict()})
            self._write_results()

        strategy = get_strategy(strategy_name, **c.strategy_options(strategy_name))
        bar = tqdm(range(record["round"] + 1, c.rounds + 1), desc=f"{da_method}/{strategy_name} run {run}",
                   unit="round", disable=not self.options.progress, leave=False)
        for round_index in bar:
            row = self._run_round(model, method, strategy, record, round_index)
            record = dict(record, round=round_index, rows=record["rows"] + [row])
            finished = round_index == c.rounds and not self.options.keep_checkpoints
            state = None if finished else {"model": cpu_state(model), "da_state": method.state_dict()}
            checkpoint.save(record, state)
            self._add_rows([row])
            self._write_results()
            bar.set_postfix(acc=f"{row['accuracy']:.1f}")

    def _run_round(self, model, method, strategy, record: dict, round_index: int) -> dict:
        c = self.config
        da_method, strategy_name, run = record["da_method"], record["strategy"], record["run"]
        labeled = list(record["labeled"])
        pool = self.shift.target_pool
        source_train = labeled_source(c, self.shift)
        selection = select_step(model, method, strategy, pool, labeled, config=c, source_train=source_train,
                                da_method=da_method, strategy_name=strategy_name, run=run, round_index=round_index,
                                device=self.device)
        if self.options.plot_picks and round_index == 1 and run == 0:
            outputs = selection.context.outputs
            correct = outputs.logits.argmax(dim=1).cpu() == self._pool_labels()
            save_round1(self.out_dir, da_method, strategy_name, outputs.embeddings, correct, selection.picks)
        labeled.extend(selection.picks.tolist())
        record["labeled"] = labeled
        update = update_step(model, method, pool, labeled, config=c, source_train=source_train,
                             target_test=self.shift.target_test, da_method=da_method, strategy_name=strategy_name,
                             run=run, round_index=round_index, device=self.device, progress=self.options.progress)
        logger.info("%s/%s run %d round %d: %d labels, accuracy %.2f%% (query %.2f s, update %.1f s)",
                    da_method, strategy_name, run, round_index, len(labeled), update.accuracy, selection.seconds,
                    update.seconds)
        return self._row(da_method, strategy_name, run, round_index, len(labeled), update.accuracy,
                         selection.seconds, update.seconds)

    def _pool_labels(self) -> torch.Tensor:
        if self._labels is None:
            loader = DataLoader(self.shift.target_pool, batch_size=INFERENCE_BATCH, shuffle=False)
            self._labels = torch.cat([torch.as_tensor(labels) for _, labels in loader])
        return self._labels

    def _row(self, da_method, strategy, run, round_index, n_labels, accuracy, query_seconds, train_seconds) -> dict:
        return {
            "shift": self.config.shift_name,
            "strategy": strategy,
            "da_method": da_method,
            "run": run,
            "round": round_index,
            "n_labels": n_labels,
            "accuracy": round(float(accuracy), 4),
            "query_seconds": round(float(query_seconds), 4),
            "train_seconds": round(float(train_seconds), 3),
        }

    def _check_record(self, checkpoint: UnitCheckpoint, record: dict) -> None:
        if record.get("identity") != self.config.identity():
            raise ConfigMismatchError(
                f"{checkpoint.record_path} was written by a different configuration "
                f"(identity {record.get('identity')} != {self.config.identity()}); use another --out"
            )

    def _add_rows(self, rows) -> None:
        for row in rows:
            self.rows[(row["da_method"], row["strategy"], row["run"], row["round"])] = row

    def _write_results(self) -> None:
        storage.write_jsonl(self.out_dir / "results.jsonl", sort_rows(self.rows.values(), self.config))


class _Once:
    """Calls ``function`` on first use and remembers the result."""

    def __init__(self, function: Callable[[], dict]):
        self.function = function
        self.result: Optional[dict] = None

    def __call__(self) -> dict:
        if self.result is None:
            self.result = self.function()
        return self.result


def claim_out_dir(out_dir: Path, config: ExperimentConfig, metadata: dict) -> None:
    """Check that ``out_dir`` is empty or holds this config's identity; record the config.

    Raises:
        ConfigMismatchError: it holds results of a config with another identity;
            the message lists the fields that differ.
    """
    path = Path(out_dir) / "config.json"
    if path.is_file():
        with open(path, encoding="utf-8") as handle:
            existing = json.load(handle)
        if existing.get("identity") != config.identity():
            old, new = existing.get("identity_fields", {}), config.identity_fields()
            differ = sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k))
            details = ", ".join(f"{k}: {old.get(k)!r} -> {new.get(k)!r}" for k in differ) or "unknown fields"
            raise ConfigMismatchError(
                f"{out_dir} holds results of a different configuration ({details}). Use another --out "
                "(or delete that folder to start over); only strategies, DA methods, runs and rounds may "
                "change between calls that share an output folder."
            )
    storage.write_json(path, {
        **metadata,
        "identity": config.identity(),
        "identity_fields": config.identity_fields(),
        "config": config.as_dict(),
        "clue_ext_version": __version__,
        "torch_version": torch.__version__,
    })
