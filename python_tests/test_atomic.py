"""clue_ext._atomic: a write interrupted by a signal leaves neither a truncated file nor a temporary one."""

import os
import signal
import threading
import time

import pytest

from clue_ext._atomic import Terminated, _SignalsRaise, atomic_write


@pytest.fixture
def main_thread_defaults():
    # What a command starts with; the tests below signal their own process, so they must not run otherwise.
    assert threading.current_thread() is threading.main_thread()
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_sigterm_during_a_write_raises_terminated_and_leaves_no_file(tmp_path, main_thread_defaults):
    def write(handle):
        handle.write(b"the first half")
        handle.flush()
        assert signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL, "SIGTERM would end the process here"
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(10)  # the handler raises first
        raise AssertionError("SIGTERM did not stop the write")

    with pytest.raises(Terminated) as stopped:
        atomic_write(tmp_path / "out.bin", write, binary=True)
    assert stopped.value.code == 128 + signal.SIGTERM
    assert list(tmp_path.iterdir()) == []
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL  # given back


def test_a_handler_the_program_installed_is_left_alone(tmp_path, main_thread_defaults):
    seen = []

    def write(handle):
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(0.05)
        handle.write(b"complete")

    mine = signal.signal(signal.SIGTERM, lambda signum, frame: seen.append(signum))
    try:
        atomic_write(tmp_path / "out.bin", write, binary=True)
        assert signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL
    finally:
        signal.signal(signal.SIGTERM, mine)
    assert seen == [signal.SIGTERM]
    assert [path.name for path in tmp_path.iterdir()] == ["out.bin"]
    assert (tmp_path / "out.bin").read_bytes() == b"complete"


def test_a_signal_while_held_is_raised_on_leaving(main_thread_defaults):
    reached = False
    with _SignalsRaise() as signals:
        with pytest.raises(KeyboardInterrupt):
            with signals.held():
                os.kill(os.getpid(), signal.SIGINT)
                time.sleep(0.05)
                reached = True
    assert reached
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
