import os
import signal
import threading

import pytest

from qa.interrupts import interrupts_deferred, raise_if_interrupted


def ctrl_c() -> None:
    os.kill(os.getpid(), signal.SIGINT)  # the handler runs at the next bytecode boundary


def test_first_ctrl_c_waits_for_a_safe_point():
    reached = []
    with pytest.raises(KeyboardInterrupt):
        with interrupts_deferred():
            ctrl_c()
            reached.append("after the signal")  # not interrupted here
            raise_if_interrupted()
            reached.append("after the safe point")
    assert reached == ["after the signal"]


def test_no_ctrl_c_no_interrupt():
    with interrupts_deferred():
        raise_if_interrupted()
    raise_if_interrupted()


def test_second_ctrl_c_stops_at_once():
    reached = []
    with pytest.raises(KeyboardInterrupt):
        with interrupts_deferred():
            ctrl_c()
            reached.append("after the first")
            ctrl_c()
            reached.append("after the second")
    assert reached == ["after the first"]


def test_the_previous_handler_is_restored_and_nothing_stays_pending():
    before = signal.getsignal(signal.SIGINT)
    with interrupts_deferred():
        assert signal.getsignal(signal.SIGINT) is not before
        ctrl_c()  # after the last safe point: dropped when the block ends
    assert signal.getsignal(signal.SIGINT) is before
    raise_if_interrupted()


def test_outside_the_main_thread_it_changes_nothing():
    before = signal.getsignal(signal.SIGINT)
    seen = []

    def work():
        with interrupts_deferred():
            seen.append(signal.getsignal(signal.SIGINT))

    thread = threading.Thread(target=work)
    thread.start()
    thread.join()
    assert seen == [before]
