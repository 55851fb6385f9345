"""Ctrl-C during an index write, taken only where stopping is safe.

Python raises KeyboardInterrupt in whatever Python code the main thread runs next. That can be
a callback that torch's C++ (pybind11) makes into Python, where the exception becomes a C++ one and
may abort the process: `qa index add` stopped by Ctrl-C exited -6 ("terminate called after
throwing an instance of 'pybind11::error_already_set'") or -2 in about 1 try in 10, instead of
130 with the index unchanged.

So while `interrupts_deferred()` is active, the first SIGINT only records itself, and
`raise_if_interrupted()`, called at safe points (between ingested items, embedding batches and the
steps of an update, and last before a new generation is renamed into place), raises
KeyboardInterrupt there. A second Ctrl-C raises at once, so a stuck step can still be stopped.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager

_pending = threading.Event()


def raise_if_interrupted() -> None:
    """Raise KeyboardInterrupt if Ctrl-C came while interrupts were deferred (else do nothing)."""
    if _pending.is_set():
        _pending.clear()
        raise KeyboardInterrupt


@contextmanager
def interrupts_deferred() -> Iterator[None]:
    """Defer SIGINT to the next `raise_if_interrupted()` for the duration of the block.

    Only the main thread can install signal handlers; elsewhere (a server's worker thread, a test
    runner thread) this does nothing and SIGINT keeps its usual handler.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def record(signum, frame) -> None:
        if _pending.is_set():  # the second Ctrl-C: stop now, wherever we are
            raise KeyboardInterrupt
        _pending.set()

    previous = signal.signal(signal.SIGINT, record)
    _pending.clear()
    try:
        yield
        # A Ctrl-C after the last safe point, once the new generation is in place, changes nothing:
        # the command finishes and reports what it wrote.
    finally:
        signal.signal(signal.SIGINT, previous)
        _pending.clear()
