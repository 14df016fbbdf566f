"""``accuracy.png``: accuracy vs number of target labels, mean and 1-std band per strategy."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Optional

from .._atomic import atomic_write
from .stats import accuracy_stats


def plot_accuracy(rows: list[dict], path: Path, *, title: Optional[str] = None) -> None:
    """One panel per DA method, one line per strategy (mean over runs, ±1 std shaded).

    Drawn on an Agg canvas directly, so no pyplot state or GUI backend is touched.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    stats = accuracy_stats(rows)
    da_methods = list(dict.fromkeys(da for da, _ in stats))
    figure = Figure(figsize=(5.0 * max(1, len(da_methods)), 4.0), layout="constrained")
    FigureCanvasAgg(figure)
    axes = figure.subplots(1, max(1, len(da_methods)), squeeze=False)[0]
    for ax, da_method in zip(axes, da_methods):
        for (da, strategy), cells in stats.items():
            if da != da_method:
                continue
            labels = list(cells)
            mean = [cells[n].mean for n in labels]
            std = [cells[n].std for n in labels]
            (line,) = ax.plot(labels, mean, marker="o", markersize=3, label=strategy)
            ax.fill_between(labels, [m - s for m, s in zip(mean, std)], [m + s for m, s in zip(mean, std)],
                            color=line.get_color(), alpha=0.2, linewidth=0)
        ax.set_title(f"{title} ({da_method})" if title else da_method)
        ax.set_xlabel("target labels")
        ax.set_ylabel("target test accuracy (%)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize="small")
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=120)
    atomic_write(Path(path), lambda handle: handle.write(buffer.getvalue()), binary=True)
