"""The two stages every unit of a run shares, computed once and cached on disk.

* the source model (trained on labeled source data), shared by all runs; from
  scratch (``init="scratch"``), the untrained model stands in for it;
* round 0 of each (DA method, run): the source model after unsupervised
  adaptation to the target pool (``ft`` skips it), and its target accuracy.

Each is stored under the cache folder by a hash of exactly the settings that
produce it, so another output folder with the same settings (or a rerun)
reuses it, and a changed setting never serves a stale file.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Optional

from torch.utils.data import Dataset

from ..adapt import get_da_method
from ..data import DomainShift
from . import storage
from .configs import ExperimentConfig, stable_hash
from .seeds import run_seed, source_seed
from .training import build_initial_model, cpu_state, evaluate_accuracy, target_training_view, train_source_model

logger = logging.getLogger(__name__)

# Bump when what a stage computes changes, so old cache files miss.
# 2: source model kept at its best validation epoch; authors' epochs and round-0 weights.
STAGE_VERSION = 2


def source_key(config: ExperimentConfig) -> str:
    fields = config.identity_fields()
    if config.from_scratch:
        # No source training: only what builds the initial model matters.
        keep = ("init", "source", "target", "source_dir", "target_dir", "model", "pretrained", "weights", "seed")
    else:
        keep = ("source", "target", "source_dir", "target_dir", "test_fraction", "data_seed", "limit_source", "model",
                "pretrained", "weights", "source_epochs", "source_lr", "source_val_fraction", "weight_decay",
                "batch_size", "seed")
    return stable_hash({"stage": "source", "version": STAGE_VERSION, **{k: fields[k] for k in keep}})


def round0_key(config: ExperimentConfig, da_method: str, run: int) -> str:
    fields = config.identity_fields()
    return stable_hash({
        "stage": "round0",
        "version": STAGE_VERSION,
        "source_model": source_key(config),
        "da_method": da_method,
        "run": run,
        "uda_epochs": config.uda_epochs,
        "hparams": config.da_hparams(run_seed(config.seed, run, da_method)),
        "pool": [fields["limit_pool"], fields["limit_test"]],
        "augment_target": config.augment_target,
    })


class StageCache:
    """Builds or loads the source model and the round-0 models of an experiment."""

    def __init__(self, config: ExperimentConfig, shift: DomainShift, cache_dir: Path, *, device, progress: bool,
                 source_val: Optional[Dataset] = None):
        self.config = config
        self.shift = shift
        self.source_val = source_val
        self.cache_dir = Path(cache_dir)
        self.device = device
        self.progress = progress
        self._source: Optional[dict] = None  # read once per process, whatever the number of round-0 stages

    def source_model(self) -> dict:
        """``{"model": state, "target_accuracy", "seconds", "best_epoch", "val_accuracy"}``.

        The accuracies are ``None`` when the shift has no ``target_test``.
        """
        if self._source is None:
            self._source = self._load_or_train_source()
        return self._source

    def _load_or_train_source(self) -> dict:
        path = self.cache_dir / f"source-{source_key(self.config)}.pt"
        cached = storage.load_torch(path)
        if cached is not None:
            logger.info("source model: cached %s (target accuracy %s)", path.name, _percent(cached["target_accuracy"]))
            return cached
        seed = source_seed(self.config.seed)
        model = build_initial_model(self.config, self.shift, seed, self.device)
        started = time.perf_counter()
        training = None
        if not self.config.from_scratch:  # from scratch, the untrained model stands in for the source model
            training = train_source_model(model, self.config, self.shift.source_train, seed=seed,
                                          device=self.device, progress=self.progress, source_val=self.source_val)
        result = {
            "model": cpu_state(model),
            "target_accuracy": self._accuracy(model),
            "seconds": time.perf_counter() - started if training is not None else 0.0,
            "best_epoch": training.best_epoch if training is not None else None,
            "val_accuracy": training.val_accuracy if training is not None else None,
        }
        storage.save_torch(path, result)
        if training is None:
            logger.info("from scratch: the initial model, %s accuracy %s before any label",
                        self.shift.name, _percent(result["target_accuracy"]))
        else:
            logger.info("source model: trained in %.1f s, %s accuracy %s before adaptation",
                        result["seconds"], self.shift.name, _percent(result["target_accuracy"]))
        return result

    def _round0_path(self, da_method: str, run: int) -> Path:
        return self.cache_dir / f"round0-{da_method}-run{run}-{round0_key(self.config, da_method, run)}.pt"

    def cached_round0(self, da_method: str, run: int) -> Optional[dict]:
        """The round-0 stage if it is in the cache (nothing is trained), else ``None``."""
        return storage.load_torch(self._round0_path(da_method, run))

    def round0(self, da_method: str, run: int) -> dict:
        """``{"model", "da_state", "accuracy", "seconds"}`` after round-0 adaptation."""
        path = self._round0_path(da_method, run)
        cached = storage.load_torch(path)
        if cached is not None:
            logger.info("round 0 (%s, run %d): cached, accuracy %s", da_method, run, _percent(cached["accuracy"]))
            return cached
        source = self.source_model()
        model = build_initial_model(self.config, self.shift, source_seed(self.config.seed), self.device,
                                    load_pretrained=False)
        model.load_state_dict(source["model"])
        method = get_da_method(da_method, **self.config.da_hparams(run_seed(self.config.seed, run, da_method)))
        started = time.perf_counter()
        method.adapt_unsupervised(
            model, self.shift.source_train, target_training_view(self.shift.target_pool, self.config),
            epochs=self.config.uda_epochs, device=self.device, progress=self.progress,
        )
        result = {
            "model": cpu_state(model),
            "da_state": method.state_dict(),
            "accuracy": self._accuracy(model),
            "seconds": time.perf_counter() - started,
        }
        storage.save_torch(path, result)
        logger.info("round 0 (%s, run %d): adapted in %.1f s, accuracy %s",
                    da_method, run, result["seconds"], _percent(result["accuracy"]))
        return result

    def _accuracy(self, model) -> Optional[float]:
        """Target test accuracy; ``None`` when the target has no labelled test set (a labelling project)."""
        if self.shift.target_test is None:
            return None
        return evaluate_accuracy(model, self.shift.target_test, self.device)


def _percent(accuracy: Optional[float]) -> str:
    return "unknown (no target test set)" if accuracy is None else f"{accuracy:.2f}%"
