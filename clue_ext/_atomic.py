"""Atomic file writes: a file is either its old complete self or its new complete self.

The data goes to a temporary file in the same folder (so the final rename stays
on one file system, where ``os.replace`` is atomic) and is moved onto its name
only once complete. A writer killed at any moment leaves no truncated file, and
one interrupted by SIGINT or SIGTERM leaves no temporary file either: while a
write is under way, in the main thread, those signals raise (KeyboardInterrupt,
:class:`Terminated`) instead of ending the process where it stands, unless the
program installed handlers of its own, which are left alone. Uncaught,
:class:`Terminated` ends the process with status 128 + 15, as a shell reports a
process killed by SIGTERM.
"""

from __future__ import annotations

import os
import signal
import stat
import tempfile
import threading
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any, Callable, Dict, List, Union


class Terminated(SystemExit):
    """SIGTERM arrived during an atomic write; raised so that the temporary file is removed."""

    def __init__(self, signum: int):
        super().__init__(128 + signum)
        self.signum = signum


def atomic_write(path: Union[str, os.PathLike], write: Callable[[Any], None], *, binary: bool) -> None:
    """Call ``write(handle)`` on a temporary file, then move it onto ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with _SignalsRaise() as signals:
        handle = tmp_name = None
        try:
            with signals.held():  # no signal between creating the file and holding its name and handle
                fd, tmp_name = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
                handle = os.fdopen(fd, "wb" if binary else "w", **({} if binary else {"encoding": "utf-8"}))
            with handle:
                write(handle)
                handle.flush()
                os.fsync(handle.fileno())
            os.chmod(tmp_name, 0o644)  # mkstemp makes it private; these are ordinary shared files
            os.replace(tmp_name, path)
        except BaseException:
            # Also on KeyboardInterrupt and Terminated: leave no temporary file behind.
            with signals.held():
                if handle is not None:
                    with suppress(OSError):
                        handle.close()
                if tmp_name is not None:
                    with suppress(FileNotFoundError):
                        os.unlink(tmp_name)
            raise


class _SignalsRaise:
    """While entered, SIGINT and SIGTERM raise in the main thread, where their handlers are Python's defaults;
    inside ``held()`` they are noted, and raised on leaving it."""

    _DEFAULTS = ((signal.SIGINT, signal.default_int_handler), (signal.SIGTERM, signal.SIG_DFL))

    def __init__(self):
        self._previous: Dict[int, Any] = {}
        self._holding = False
        self._pending: List[int] = []

    def __enter__(self) -> "_SignalsRaise":
        if threading.current_thread() is threading.main_thread():  # the only thread that may set handlers
            for signum, default in self._DEFAULTS:
                if signal.getsignal(signum) is default:
                    self._previous[signum] = signal.signal(signum, self._handle)
        return self

    def __exit__(self, *exc_info) -> None:
        for signum, previous in self._previous.items():
            signal.signal(signum, previous)

    def _handle(self, signum: int, frame) -> None:
        if self._holding:
            self._pending.append(signum)
        else:
            _raise_for(signum)

    @contextmanager
    def held(self):
        self._holding = True
        try:
            yield
        finally:
            self._holding = False
            if self._pending:  # even when leaving on an error: a signal is never lost
                _raise_for(self._pending.pop(0))


def _raise_for(signum: int) -> None:
    if signum == signal.SIGINT:
        raise KeyboardInterrupt
    raise Terminated(signum)


_NOT_REGULAR = ((stat.S_ISDIR, "a folder"), (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
                (stat.S_ISFIFO, "a FIFO"), (stat.S_ISSOCK, "a socket"))


def check_target(path: Union[str, os.PathLike]) -> None:
    """Raises ValueError unless ``atomic_write(path, ...)`` can and may put a file there: `path` is absent or a
    regular file (a device node, a folder or a FIFO is never replaced), and its folder is one this process can
    write in, or can create (each tried with a temporary file or folder, removed at once)."""
    path = Path(path)
    try:
        mode = os.stat(path).st_mode
    except (FileNotFoundError, NotADirectoryError):
        mode = None
    except OSError as error:
        raise ValueError(f"cannot look at {path}: {error.strerror}") from error
    if mode is not None and not stat.S_ISREG(mode):
        kind = next((name for test, name in _NOT_REGULAR if test(mode)), "not a regular file")
        raise ValueError(f"{path} exists and is {kind}; only a regular file is ever replaced")
    folder = path.parent
    existing = folder
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise ValueError(f"cannot make the folder {folder}: {existing} is not a folder")
    # Tried rather than asked: the permission bits miss read-only mounts seen as root, ACLs, and file systems
    # that refuse new entries. A missing folder is tried by making (and removing) a folder where it would go.
    with _SignalsRaise() as signals, signals.held():
        try:
            if existing == folder:
                fd, probe = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=folder)
                os.close(fd)
                os.unlink(probe)
            else:
                os.rmdir(tempfile.mkdtemp(prefix=path.name + ".", suffix=".tmp", dir=existing))
        except OSError as error:
            what = f"write in {folder}" if existing == folder else f"create the folder {folder} in {existing}"
            raise ValueError(f"cannot {what}: {error.strerror}") from error
