"""--plot-picks: round-1 picks on a t-SNE of the pool (Fig. 3), without changing any result."""

import json

import pytest
import torch

from clue_ext.experiments.__main__ import main
from clue_ext.experiments.picks_plot import record_path

pytestmark = pytest.mark.usefixtures("single_thread")


def run(out, cache, *extra):
    return main(["--preset", "tiny", "--rounds", "1", "--runs", "1", "--epochs", "1", "--strategies",
                 "entropy,clue", "--da", "ft", "--out", str(out), "--cache-dir", str(cache), "--quiet", *extra])


def accuracies(out):
    rows = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]
    return [(r["strategy"], r["round"], r["accuracy"]) for r in rows]


def test_plot_picks_draws_the_round1_picks_and_changes_no_result(tmp_path):
    cache = tmp_path / "cache"
    plotted, plain = tmp_path / "plotted", tmp_path / "plain"
    assert run(plotted, cache, "--plot-picks") == 0
    assert run(plain, cache) == 0
    assert accuracies(plotted) == accuracies(plain)
    assert not (plain / "picks_round1.png").exists()
    png = (plotted / "picks_round1.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 20_000
    for strategy in ("entropy", "clue"):
        record = torch.load(record_path(plotted, "ft", strategy), weights_only=True)
        labeled = json.loads(next((plotted / "checkpoints").glob(f"ft/{strategy}/run0.json")).read_text())["labeled"]
        assert record["picks"].tolist() == labeled  # the round's picks, as the checkpoint has them
        assert record["embeddings"].shape[0] == record["correct"].shape[0] > len(labeled)
    # Resumed (nothing left to run), the figure is drawn again from the saved records.
    (plotted / "picks_round1.png").unlink()
    assert run(plotted, cache, "--plot-picks") == 0
    assert (plotted / "picks_round1.png").exists()
