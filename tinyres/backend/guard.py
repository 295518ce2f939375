"""Refusing tinyres's own gradients while a student's answer runs.

The gradient-check assignment asks students to write backward passes.  tinyres can
compute every one of them already, so the grader runs each answer inside
:func:`answer_guard`; until it returns, three things refuse with
:class:`NotAllowedInAnswerError`:

* every differentiable op (``Function.apply``: ``F.conv2d``, ``Tensor`` arithmetic, ...);
* the graph walk (``Tensor.backward``);
* the backends' ``*_backward`` kernels, marked with :func:`backward_kernel`.

The forward kernels, ``im2col`` and ``col2im`` keep working: the assignment permits them.
The guard is a counter, not a lock: Python code can always reach it.  An answer that
resets it and leaves it so is caught when it returns; one that resets it and puts it
back is not.  So it stops the shortcut of calling tinyres, not a determined cheat; the
course page of the documentation says what narrows the rest.
"""
import contextlib
import functools

_answers_running = 0   # how many answer_guard blocks are open (they may nest)


class NotAllowedInAnswerError(RuntimeError):
    """Raised when an answer calls tinyres's own gradients, which the assignment forbids."""


def inside_answer():
    """True while a student's answer runs (inside :func:`answer_guard`)."""
    return _answers_running > 0


@contextlib.contextmanager
def answer_guard():
    """Run a student's answer with tinyres's gradients refused (see the module docstring)."""
    global _answers_running
    _answers_running += 1
    depth = _answers_running
    try:
        yield
    finally:
        tampered = _answers_running != depth
        _answers_running = depth - 1
        if tampered:  # an answer that switched the guard off and left it so
            raise NotAllowedInAnswerError("changing tinyres's answer guard is not allowed "
                                          "inside an answer")


def refuse_inside_answer(what):
    """Raise :class:`NotAllowedInAnswerError` naming ``what`` if an answer is running."""
    if _answers_running:
        raise NotAllowedInAnswerError(
            f"{what} is not allowed inside an answer: the assignment asks you to write this "
            "gradient yourself with NumPy (im2col, col2im and the forward kernels are allowed)")


def backward_kernel(kernel):
    """Mark ``kernel`` as a backward kernel: it refuses to run inside an answer."""
    where = f"{kernel.__module__}.{kernel.__name__}"

    @functools.wraps(kernel)
    def guarded(*args, **kwargs):
        refuse_inside_answer(where)
        return kernel(*args, **kwargs)
    return guarded
