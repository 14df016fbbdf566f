"""``--plot-picks``: what each strategy picks in round 1, on a t-SNE of the pool (the paper's Fig. 3).

In round 1 every strategy of a DA method starts from the same round-0 model,
so the pool's embeddings are shared: one 2-D t-SNE (scikit-learn) per DA
method, one panel per strategy, the model's correct and wrong predictions
told apart and the picked points marked. The round's embeddings, correctness
and picks are saved under ``picks/`` when the round runs, so a resumed run
still draws the figure.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Optional

import torch

from .._atomic import atomic_write
from . import storage

# Points embedded at most (a seeded subset beyond it; the picks are always kept).
MAX_POINTS = 4000


def record_path(out_dir: Path, da_method: str, strategy: str) -> Path:
    return Path(out_dir) / "picks" / da_method / f"{strategy}.pt"


def save_round1(out_dir: Path, da_method: str, strategy: str, embeddings: torch.Tensor, correct: torch.Tensor,
                picks: torch.Tensor) -> None:
    storage.save_torch(record_path(out_dir, da_method, strategy), {
        "embeddings": embeddings.detach().float().cpu(), "correct": correct.bool().cpu(), "picks": picks.long().cpu(),
    })


def tsne_2d(embeddings: torch.Tensor, seed: int) -> torch.Tensor:
    from sklearn.manifold import TSNE

    n = embeddings.shape[0]
    perplexity = float(min(30.0, max(2.0, (n - 1) / 3)))
    points = TSNE(n_components=2, init="pca", perplexity=perplexity, random_state=seed).fit_transform(
        embeddings.double().numpy())
    return torch.from_numpy(points).double()


def plot_picks(out_dir: Path, da_methods, strategies, *, seed: int = 0) -> Optional[Path]:
    """Draw ``picks_round1.png`` from the saved round-1 records; None when there are none."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    rows = []
    for da_method in da_methods:
        records = {s: storage.load_torch(record_path(out_dir, da_method, s)) for s in strategies}
        records = {s: r for s, r in records.items() if r is not None}
        if records:
            rows.append((da_method, records))
    if not rows:
        return None
    width = max(len(records) for _, records in rows)
    figure = Figure(figsize=(4.0 * width, 4.0 * len(rows)), layout="constrained")
    FigureCanvasAgg(figure)
    axes = figure.subplots(len(rows), width, squeeze=False)
    for line, (da_method, records) in zip(axes, rows):
        first = next(iter(records.values()))
        n = first["embeddings"].shape[0]
        shown = torch.arange(n)
        if n > MAX_POINTS:
            kept = torch.randperm(n, generator=torch.Generator().manual_seed(seed))[:MAX_POINTS]
            picked = torch.cat([r["picks"] for r in records.values()])
            shown = torch.unique(torch.cat([kept, picked]))
        xy = torch.full((n, 2), float("nan"), dtype=torch.float64)
        xy[shown] = tsne_2d(first["embeddings"][shown], seed)
        for ax, (strategy, record) in zip(line, records.items()):
            correct = record["correct"][shown]
            pts = xy[shown]
            ax.scatter(pts[correct, 0], pts[correct, 1], s=4, c="#9ecae1", label="correct", linewidths=0)
            ax.scatter(pts[~correct, 0], pts[~correct, 1], s=4, c="#fc9272", label="wrong", linewidths=0)
            picks = xy[record["picks"]]
            ax.scatter(picks[:, 0], picks[:, 1], s=60, marker="*", c="black", label="picked")
            ax.set_title(f"{strategy} ({da_method})")
            ax.set_xticks([])
            ax.set_yticks([])
        line[0].legend(fontsize="small", loc="best")
        for ax in line[len(records):]:
            ax.set_visible(False)
    path = Path(out_dir) / "picks_round1.png"
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=110)
    atomic_write(path, lambda handle: handle.write(buffer.getvalue()), binary=True)
    return path
