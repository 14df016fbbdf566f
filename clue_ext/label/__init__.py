"""Active DA on your own unlabelled images, with a person labelling them (``clue-label``).

``init`` records a labelled source folder, an unlabelled target folder and
the settings in a project folder; each ``query`` trains what is missing and
asks for the next round's images (``to_label.csv``, Label Studio's
``tasks.json``, the page ``to_label.html``); ``ingest`` takes the labels
back; ``status`` and ``predict`` report. The training and selection are the
experiments' own steps (``clue_ext.experiments.round_steps``), so the loop
computes what the simulation computes when the person answers as the
simulation's oracle would.
"""

from .cli import main

__all__ = ["main"]
