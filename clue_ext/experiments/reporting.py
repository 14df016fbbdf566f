"""Tables of results: aggregation over runs, ``summary.md`` and the printed summary."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import Iterable, Optional

from . import storage
from .configs import ExperimentConfig
from .plots import plot_accuracy
from .stats import accuracy_stats


def sort_rows(rows: Iterable[dict], config: ExperimentConfig) -> list[dict]:
    """Rows ordered by DA method and strategy (the config's order first), run, round."""
    da_order = {name: i for i, name in enumerate(config.da_methods)}
    strategy_order = {name: i for i, name in enumerate(config.strategies)}

    def key(row):
        return (
            da_order.get(row["da_method"], len(da_order)), row["da_method"],
            strategy_order.get(row["strategy"], len(strategy_order)), row["strategy"],
            row["run"], row["round"],
        )

    return sorted(rows, key=key)


def query_seconds(rows: Iterable[dict]) -> dict[tuple[str, str], float]:
    """Mean query time per acquisition round (round 0 has none)."""
    grouped: dict[tuple[str, str], list[float]] = defaultdict(list)
    for row in rows:
        if row["round"] > 0:
            grouped[(row["da_method"], row["strategy"])].append(row["query_seconds"])
    return {key: sum(v) / len(v) for key, v in grouped.items()}


def table_cells(rows: list[dict], label_counts: list[int]) -> tuple[list[str], list[list[str]], dict]:
    """Header and body of the summary table (one line per DA method and strategy).

    Columns: DA method, strategy, accuracy at 0 labels and at each of
    ``label_counts`` (mean ± std over runs), runs, query seconds per round.
    The best mean per DA method and column is returned in the third value,
    ``{(da_method, column): best_mean}``.
    """
    stats = accuracy_stats(rows)
    timing = query_seconds(rows)
    columns = [0] + [n for n in label_counts if n != 0]
    header = ["DA", "strategy"] + [f"{n} labels" for n in columns] + ["runs", "query s/round"]
    body, best = [], {}
    for (da_method, strategy), cells in stats.items():
        line = [da_method, strategy]
        for n in columns:
            stat = cells.get(n)
            line.append(stat.format() if stat else "-")
            if stat:
                best[(da_method, n)] = max(best.get((da_method, n), -1.0), round(stat.mean, 1))
        runs = max(stat.count for stat in cells.values())
        line += [str(runs), f"{timing[(da_method, strategy)]:.3f}" if (da_method, strategy) in timing else "-"]
        body.append(line)
    return header, body, {"columns": columns, "best": best}


def summary_markdown(rows: list[dict], config: ExperimentConfig, title: Optional[str] = None) -> str:
    """``summary.md``: a Table-1-style table, best mean per DA method and label count in bold."""
    label_counts = config.label_counts_to_report()
    header, body, info = table_cells(rows, label_counts)
    lines = [
        f"# {title or 'Active DA'}: {config.shift_name}",
        "",
        f"Target test accuracy (%) after each number of target labels, mean ± sample std over runs. "
        f"{config.rounds} rounds x B = {config.budget}, model {config.model}, T = {config.temperature:g}.",
        "",
        "| " + " | ".join(header) + " |",
        "|" + "|".join(["---"] * 2 + ["---:"] * (len(header) - 2)) + "|",
    ]
    for line in body:
        cells = list(line)
        for position, n in enumerate(info["columns"], start=2):
            # Column 0 is the shared start of every strategy: nothing to win there.
            if n != 0 and cells[position] != "-" and float(cells[position].split(" ")[0]) == info["best"].get((line[0], n)):
                cells[position] = f"**{cells[position]}**"
        lines.append("| " + " | ".join(cells) + " |")
    lines += ["", "Full curves: `accuracy.png`; every number: `results.jsonl`.", ""]
    return "\n".join(lines)


def summary_text(rows: list[dict], config: ExperimentConfig) -> str:
    """The summary table as aligned plain text, for the terminal."""
    header, body, _ = table_cells(rows, config.label_counts_to_report())
    widths = [max(len(r[i]) for r in [header] + body) for i in range(len(header))]
    def fmt(cells):
        return "  ".join(c.ljust(w) if i < 2 else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths)))
    return "\n".join([fmt(header), "  ".join("-" * w for w in widths)] + [fmt(line) for line in body])


def write_reports(out_dir: Path, rows: list[dict], config: ExperimentConfig) -> None:
    """Write ``results.jsonl``, ``summary.md`` and ``accuracy.png`` into ``out_dir``."""
    out_dir = Path(out_dir)
    storage.write_jsonl(out_dir / "results.jsonl", rows)
    storage.write_text(out_dir / "summary.md", summary_markdown(rows, config))
    plot_accuracy(rows, out_dir / "accuracy.png", title=config.shift_name)
