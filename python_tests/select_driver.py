"""`clue-select` (clue_ext.select_command.main) with two test hooks, for test_select_command.py.

    python select_driver.py [hold-write] [RANK FLAG PATH]... -- ARGUMENTS...
    torchrun ... select_driver.py [RANK FLAG PATH]... -- ARGUMENTS...

RANK FLAG PATH: on the process whose RANK (as torchrun sets it) is RANK, FLAG
is given PATH instead of what ARGUMENTS say: ranks that read different files.
hold-write: numpy.save writes the start of a .npy header into the temporary
file, prints "writing" to stdout and sleeps, so that the test can signal the
process while the file is open. All else is the command's own code.
"""

import os
import sys
import time

import numpy as np

from clue_ext.select_command import main


def _hold(handle, array, *args, **kwargs):
    handle.write(b"\x93NUMPY")
    handle.flush()
    print("writing", flush=True)
    time.sleep(120)
    raise AssertionError("select_driver: not signalled while writing")


def _arguments(argv):
    split = argv.index("--")
    hooks, arguments = argv[:split], list(argv[split + 1:])
    if hooks[:1] == ["hold-write"]:
        np.save = _hold
        hooks = hooks[1:]
    rank = os.environ.get("RANK", "0")
    for at in range(0, len(hooks), 3):
        on_rank, flag, path = hooks[at:at + 3]
        if on_rank == rank:
            arguments[arguments.index(flag) + 1] = path
    return arguments


if __name__ == "__main__":
    sys.exit(main(_arguments(sys.argv[1:])))
