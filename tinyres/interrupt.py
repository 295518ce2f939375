"""Ctrl-C as a request: finish the batch, keep what completed, then stop.

Python turns Ctrl-C (the SIGINT signal) into a ``KeyboardInterrupt`` raised wherever the
program happens to be -- often deep inside a kernel, halfway through an update.  Inside
``with GracefulInterrupt() as interrupt:`` the first Ctrl-C only sets
``interrupt.requested``; the loop calls ``interrupt.check()`` at safe points (between
batches), which raises :class:`InterruptRequested` there.  A second Ctrl-C raises
``KeyboardInterrupt`` at once, for when waiting is not wanted.

Signal handlers can only be installed from the main thread; elsewhere the block
changes nothing and Ctrl-C behaves as usual.
"""
import os
import signal
import threading


class InterruptRequested(KeyboardInterrupt):
    """The first Ctrl-C, acted on at a safe point rather than where it arrived."""


NOTICE = "\nCtrl-C: stopping after this batch (press Ctrl-C again to stop at once)\n"


class GracefulInterrupt:
    """A context manager: the first Ctrl-C sets ``requested``, the second interrupts at once.

    notice: written to the terminal (standard error) at the first Ctrl-C, so that a
    long batch is not mistaken for a program that ignores Ctrl-C.  The previous SIGINT
    handler is restored on exit.
    """

    def __init__(self, notice=NOTICE):
        self.notice = notice
        self.requested = False
        self._previous = None
        self._installed = False

    def __enter__(self):
        self.requested = False
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGINT, self._on_interrupt)
            self._installed = True
        return self

    def __exit__(self, *exception):
        if self._installed:
            # None: the previous handler was not set from Python; SIG_DFL is the system's own
            previous = signal.SIG_DFL if self._previous is None else self._previous
            signal.signal(signal.SIGINT, previous)
            self._installed = False
        return False

    def _on_interrupt(self, signum, frame):
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True
        # A handler runs between two bytecodes of the main thread, possibly in the middle
        # of a print to sys.stderr, which would then fail; os.write bypasses that buffer.
        if self.notice:
            try:
                os.write(2, self.notice.encode())
            except OSError:
                pass

    def check(self):
        """Raise :class:`InterruptRequested` if Ctrl-C was pressed since the block began."""
        if self.requested:
            raise InterruptRequested
