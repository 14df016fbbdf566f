"""Collects the timings and objectives of every benchmark and prints them as
ratios against the peers measured in the same run."""

from __future__ import annotations

import collections
import os

import pytest

RESULTS: dict = collections.defaultdict(dict)  # workload name -> method -> record
INTERLEAVED: dict = {}  # workload name -> (seconds of clue_ext.select, seconds of the scikit-learn recipe)
STAGES: dict = {}  # workload name -> ({stage of select: fastest seconds}, note)
WORKLOADS: dict = {}  # workload name -> workload


def pytest_configure(config):
    """CLUE_BENCH_THREADS=n runs every benchmark on n threads (torch's intra-op pool), so
    that one suite run per setting shows how the stages scale with threads."""
    threads = os.environ.get("CLUE_BENCH_THREADS")
    if threads:
        import torch

        torch.set_num_threads(int(threads))


def bench_seeds() -> list[int]:
    """Seeds each method runs with (CLUE_BENCH_SEEDS, default 5)."""
    return list(range(int(os.environ.get("CLUE_BENCH_SEEDS", "5"))))


@pytest.fixture(scope="session")
def record_interleaved():
    def _record(workload, ours, theirs):
        WORKLOADS[workload.name] = workload
        INTERLEAVED[workload.name] = (ours, theirs)

    return _record


@pytest.fixture(scope="session")
def record_stages():
    def _record(workload, seconds_by_stage, note=""):
        WORKLOADS[workload.name] = workload
        STAGES[workload.name] = (dict(seconds_by_stage), note)

    return _record


@pytest.fixture(scope="session")
def record():
    def _record(workload, method, seconds, inertia=None, note="", coverage=None):
        WORKLOADS[workload.name] = workload
        RESULTS[workload.name][method] = dict(seconds=seconds, inertia=inertia, note=note, coverage=coverage)

    return _record


def _table(name, methods):
    ours = methods.get("clue_ext.select")
    reference = methods.get("scikit-learn recipe")
    lines = [
        f"### {name}",
        "",
        "| method | seconds | time / clue_ext | weighted inertia / scikit-learn | coverage / recipe |",
        "|---|---:|---:|---:|---:|",
    ]
    for method, r in methods.items():
        ratio = f"{r['seconds'] / ours['seconds']:.1f}x" if ours else "-"
        quality = (f"{r['inertia'] / reference['inertia']:.4f}"
                   if reference and r["inertia"] and reference["inertia"] else "-")
        coverage = (f"{r['coverage'] / reference['coverage']:.4f}"
                    if reference and r.get("coverage") and reference.get("coverage") else "-")
        lines.append(f"| {method} | {r['seconds']:.3f} | {ratio} | {quality} | {coverage} |")
    return "\n".join(lines)


def _threads() -> int:
    import torch

    return torch.get_num_threads()


def pytest_terminal_summary(terminalreporter):
    if not WORKLOADS:
        return
    terminalreporter.section("clue_ext: ratios measured in this run")
    for name, w in WORKLOADS.items():
        terminalreporter.write_line(f"\n{name}: N={w.n} D={w.d} B={w.budget}, seeds={bench_seeds()}, "
                                    f"threads={_threads()}")
        if name in RESULTS:
            terminalreporter.write_line(_table(name, RESULTS[name]))
        if name in INTERLEAVED:
            ours, theirs = INTERLEAVED[name]
            terminalreporter.write_line(
                f"\nInterleaved seed by seed (select, then the scikit-learn recipe): {ours:.3f} s vs "
                f"{theirs:.3f} s per run, scikit-learn recipe / clue_ext.select = {theirs / ours:.1f}x")
        if name in STAGES:
            stages, note = STAGES[name]
            total = sum(stages.values())
            parts = ", ".join(f"{stage} {t:.3f} s ({100 * t / total:.0f}%)" for stage, t in stages.items())
            terminalreporter.write_line(f"\nWhere select's time goes (fastest of the seeds): {parts}. {note}")
