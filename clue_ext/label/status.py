"""``status``: where the project stands, from its files alone (nothing is trained or read but JSON)."""

from __future__ import annotations

from collections import Counter

from ..experiments import storage
from .project import Project


def status_text(project: Project) -> str:
    settings, config = project.settings, project.config
    labels = project.labels()
    latest = project.latest_round()
    lines = [
        f"project {project.folder}: {project.strategy} picks {config.budget} per round, {project.da_method} adapts "
        f"{config.model}",
        f"  source {settings['source_dir']} ({len(project.classes)} classes)",
        f"  target {settings['target_dir']} ({len(project.targets())} images)"
        + (f", test set {settings['test_dir']}" if settings.get("test_dir") else ""),
    ]
    round0 = _round0_accuracy(project)
    lines.append("rounds:" if latest else "rounds: none yet (run: clue-label query PROJECT)")
    if latest and round0 is not None:
        lines.append(f"  round 0: no target label, test accuracy {round0:.2f}%")
    for r in range(1, latest + 1):
        request = project.request(r)
        got = sum(1 for p in request["paths"] if p in labels and labels[p]["round"] == r)
        line = f"  round {r}: {len(request['paths'])} requested, {got} labelled"
        state = project.load_model(r) if project.model_path(r).is_file() else None
        if state is not None and state.get("accuracy") is not None:
            line += f"; model updated, test accuracy {state['accuracy']:.2f}%"
        elif state is not None:
            line += "; model updated"
        lines.append(line)
    counts = Counter(entry["label"] for entry in labels.values())
    per_class = ", ".join(f"{name}: {counts[name]}" for name in project.classes if counts[name])
    lines.append(f"labels: {len(labels)}" + (f" ({per_class})" if labels else ""))
    still = project.open_paths(labels)
    if still:
        lines.append(f"still requested (round {latest}): {len(still)} images, listed in "
                     f"{project.folder / 'to_label.csv'} and shown by {project.folder / 'to_label.html'}")
    elif latest:
        lines.append(f"round {latest} is fully labelled: run clue-label query PROJECT for the next round")
    return "\n".join(lines)


def _round0_accuracy(project: Project):
    for path in sorted(project.cache_dir.glob(f"round0-{project.da_method}-run0-*.pt")):
        state = storage.load_torch(path)
        return None if state is None else state.get("accuracy")
    return None
