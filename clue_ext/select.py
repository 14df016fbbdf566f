"""`python -m clue_ext.select`: the command line of clue_ext.select (see select_command.py).

Importing this module by its name would replace the function
``clue_ext.select`` with the module on the package, so the module is made
callable: ``clue_ext.select(features, probs, budget)`` works either way.
The library code lives in selection.py; its public names are re-exported here
so that code written when this module held them (``from clue_ext.select import
entropy_weights``) keeps working.
"""

import sys
import types

from .select_command import main
from .selection import entropy_weights, margin_weights, sample_weights  # noqa: F401  (re-exported)
from .selection import select as _select


class _CallableModule(types.ModuleType):
    def __call__(self, *args, **kwargs):
        return _select(*args, **kwargs)


sys.modules[__name__].__class__ = _CallableModule

if __name__ == "__main__":
    sys.exit(main())
