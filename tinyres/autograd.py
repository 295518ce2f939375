"""Reverse-mode automatic differentiation: ``Function``, the graph walk, ``no_grad``.

Every differentiable op is a :class:`Function` subclass with two static methods that
sit side by side:

* ``forward(ctx, *inputs)`` computes the output array from input arrays and stores on
  ``ctx`` whatever the backward pass will need;
* ``backward(ctx, grad_output)`` receives dL/d(output) and returns dL/d(input) for each
  positional input (``None`` for inputs that take no gradient).

``Function.apply`` does the bookkeeping once for all ops: unwrap tensors to arrays,
run ``forward``, and -- when a gradient is wanted -- remember the inputs so that
:func:`backward` can walk the graph from the loss back to the leaves.

An op that is not differentiable everywhere (ReLU at 0, a tie in max pooling) says
where through ``Function.kinks``, so that :func:`tinyres.gradcheck` can tell a finite
difference that straddles such a point from a wrong backward.  An op that knows its
arithmetic says so through ``Function.cost`` (FLOPs and bytes of forward and backward),
which :func:`tinyres.profile` reads to report GFLOP/s; an op without it is timed all the
same.

While ``with tinyres.profile():`` is open, ``apply`` and the graph walk hand each
forward and backward to the profiler (:mod:`tinyres.profiler`) to be timed; otherwise
they check one module-level variable, ``profiler.active``, and go straight on.
"""
import contextlib
from dataclasses import dataclass
from typing import Callable

from . import profiler
from .backend.guard import refuse_inside_answer

_grad_enabled = True
_queued_callbacks = []   # run at the end of the current backward pass (queue_callback)


def is_grad_enabled():
    """True unless inside :func:`no_grad`."""
    return _grad_enabled


@contextlib.contextmanager
def no_grad():
    """Run a block without recording the graph (evaluation, optimizer updates)."""
    global _grad_enabled
    previous, _grad_enabled = _grad_enabled, False
    try:
        yield
    finally:
        _grad_enabled = previous


class Context:
    """What one op's forward leaves for its backward.

    ``save_for_backward(*arrays)`` keeps arrays in ``saved``; any other value can be
    set as an attribute.  ``needs_input_grad[i]`` says whether input ``i`` wants a
    gradient, so backward can skip work nobody needs.
    """

    def __init__(self, function, inputs):
        self.function = function
        self.inputs = inputs
        self.needs_input_grad = tuple(getattr(a, "requires_grad", False) for a in inputs)
        self.saved = ()
        self.released = False

    def save_for_backward(self, *arrays):
        self.saved = arrays

    def release(self):
        """Drop the saved arrays and the references to the inputs, freeing their memory."""
        function = self.function
        self.__dict__.clear()
        self.function, self.inputs, self.needs_input_grad = function, (), ()
        self.saved, self.released = (), True


@dataclass
class Kinks:
    """Where one application of an op is not differentiable (see :meth:`Function.kinks`).

    ``branch`` is an array that changes value exactly when an input crosses such a point
    (ReLU: which inputs are positive; max pooling: each window's arg-max), so two runs
    on either side of a finite difference disagree on it there.  ``describe(index)``
    says in words why element ``index`` of ``branch`` sits near one (it reads the inputs
    of this run); ``advice`` says how to move away from it.
    """
    branch: object
    describe: Callable
    advice: str


def format_index(index):
    """(1, 2) -> "[1, 2]", as a student indexes an array."""
    return "[" + ", ".join(str(int(i)) for i in index) + "]"


_kink_log = None   # a list while record_kinks() is open: each op's Kinks, in the order ops ran


@contextlib.contextmanager
def record_kinks():
    """Collect the :class:`Kinks` of every op that runs inside the block (gradcheck uses it)."""
    global _kink_log
    previous, _kink_log = _kink_log, []
    try:
        yield _kink_log
    finally:
        _kink_log = previous


class Function:
    """Base class of differentiable ops; see the module docstring."""

    @staticmethod
    def forward(ctx, *args, **kwargs):
        raise NotImplementedError

    @staticmethod
    def backward(ctx, grad_output):
        raise NotImplementedError

    @staticmethod
    def kinks(ctx, inputs, output):
        """Where this op is not differentiable, as :class:`Kinks`; None for a smooth op.

        ``inputs`` are the arrays forward received, ``output`` the array it returned.
        Only :func:`tinyres.gradcheck` calls it, to explain a mismatch; an op with a kink
        (a max, a ReLU, an absolute value) overrides it.
        """
        return None

    @staticmethod
    def cost(ctx, inputs, output):
        """What this application costs, as a dict; None when the op does not say.

        Keys (each optional): ``flops`` and ``bytes`` of forward, ``backward_flops`` and
        ``backward_bytes`` of backward for the gradients ``ctx.needs_input_grad`` asks
        for.  A multiply-add counts as two flops; bytes are the arrays the op must read
        and write at least once.  ``inputs`` are the arrays forward received, ``output``
        the array it returned.  Only the profiler calls it (:func:`tinyres.profile`).
        """
        return None

    @classmethod
    def apply(cls, *args, **kwargs):
        """Run the op on tensors and record it in the graph when a gradient is wanted.

        Positional arguments may be Tensors or plain values; keyword arguments are
        plain values (stride, padding, ...).  Returns a Tensor.
        """
        refuse_inside_answer(f"tinyres's {cls.__name__} op")
        arrays = [a.data if isinstance(a, Tensor) else a for a in args]
        ctx = Context(cls, args)
        if profiler.active is None:
            output = Tensor(cls.forward(ctx, *arrays, **kwargs))
        else:
            output = Tensor(profiler.active.record_forward(cls, ctx, arrays, kwargs))
        if _kink_log is not None:
            kinks = cls.kinks(ctx, arrays, output.data)
            if kinks is not None:
                _kink_log.append((cls, kinks))
        if _grad_enabled and any(ctx.needs_input_grad):
            output.requires_grad = True
            output._ctx = ctx
        return output


def topological_order(root):
    """Every tensor ``root`` depends on, each listed after all of its inputs (root last).

    An iterative depth-first search, so a 1000-layer network does not hit Python's
    recursion limit.
    """
    order, visited = [], set()
    stack = [(root, False)]
    while stack:
        tensor, inputs_done = stack.pop()
        if inputs_done:
            order.append(tensor)
            continue
        if id(tensor) in visited:
            continue
        visited.add(id(tensor))
        stack.append((tensor, True))
        if tensor._ctx is not None:
            for parent in tensor._ctx.inputs:
                if getattr(parent, "requires_grad", False) and id(parent) not in visited:
                    stack.append((parent, False))
    return order


def sum_to_shape(grad, shape):
    """Undo broadcasting: sum ``grad`` over the axes that broadcasting created or stretched.

    If ``a`` of ``shape`` was broadcast to ``grad.shape`` in the forward pass, each of
    its elements was used several times, so its gradient is the sum of those uses.
    """
    if grad.shape == tuple(shape):
        return grad
    extra = grad.ndim - len(shape)
    grad = grad.sum(axis=tuple(range(extra))) if extra > 0 else grad
    stretched = tuple(i for i, size in enumerate(shape) if size == 1 and grad.shape[i] != 1)
    if stretched:
        grad = grad.sum(axis=stretched, keepdims=True)
    return grad.reshape(shape)


def backward(root, grad_output, retain_graph=False):
    """Back-propagate ``grad_output`` (dL/d root, an array) to every leaf that requires grad.

    The chain rule in reverse topological order: each op receives dL/d(its output),
    summed over all its uses, before it sends gradients further back.  Leaves
    accumulate into ``.grad``; the graph is released unless ``retain_graph``.
    """
    if profiler.active is not None:   # the walk is one event, each op's backward one inside it
        return profiler.active.record_graph_walk(_walk_graph, root, grad_output, retain_graph)
    return _walk_graph(root, grad_output, retain_graph)


def _walk_graph(root, grad_output, retain_graph):
    """The chain rule of :func:`backward`, op by op from ``root`` back to the leaves."""
    refuse_inside_answer("Tensor.backward")
    grads = {id(root): grad_output}
    for tensor in reversed(topological_order(root)):
        grad = grads.pop(id(tensor), None)
        if grad is None:
            continue
        if tensor._ctx is None or tensor._retains_grad:
            tensor._accumulate_grad(grad)
        ctx = tensor._ctx
        if ctx is None:
            continue
        if ctx.released:
            raise RuntimeError(
                "backward: this graph was already released by an earlier backward(); "
                "call backward(retain_graph=True) the first time to go through it twice")
        if profiler.active is None:
            input_grads = ctx.function.backward(ctx, grad)
        else:
            input_grads = profiler.active.record_backward(ctx, grad)
        if not isinstance(input_grads, tuple):
            input_grads = (input_grads,)
        for parent, parent_grad in zip(ctx.inputs, input_grads):
            if parent_grad is None or not isinstance(parent, Tensor) or not parent.requires_grad:
                continue
            parent_grad = sum_to_shape(parent_grad, parent.shape)
            if id(parent) in grads:
                grads[id(parent)] = grads[id(parent)] + parent_grad
            else:
                grads[id(parent)] = parent_grad
        if not retain_graph:
            ctx.release()
    while _queued_callbacks:   # e.g. DistributedDataParallel averaging the gradients
        _queued_callbacks.pop(0)()


def queue_callback(callback):
    """Run ``callback()`` once, when the backward pass now running has finished.

    An op's backward can queue work that needs every gradient in place, as
    ``DistributedDataParallel`` does to average them over the ranks.
    """
    _queued_callbacks.append(callback)


# The package's one late import.  tensor.py imports this module (a Tensor's operators are
# Functions), and Function.apply wraps its results in Tensors, so Tensor can only be
# imported once everything above is defined.
from .tensor import Tensor  # noqa: E402
