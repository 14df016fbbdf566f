"""``python -m clue_ext.label``: see ``clue_ext.label.cli``."""

import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main())
