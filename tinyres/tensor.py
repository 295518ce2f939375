"""``Tensor``: an n-d array that remembers how it was made, so it can send gradients back.

A tensor holds ``data`` (a NumPy array, or a CuPy array on the GPU), ``requires_grad``,
and after :meth:`Tensor.backward` its ``grad`` (another Tensor).  Operators build new
tensors through the Functions in :mod:`tinyres.ops`; tensors made by an op remember
it in ``_ctx`` (public, read-only: ``grad_fn``) -- that link is the computational graph.

Dtypes follow one rule: tinyres never changes a dtype silently.  Arithmetic, ``exp``,
``log``, the reductions and every differentiable op take floating-point tensors
(float32 or float64) and return the same dtype.  Integer and bool tensors hold labels
and indices: they can be made, reshaped, permuted, transposed, indexed and padded, and
converted with :meth:`Tensor.astype`; everything else refuses them with a TypeError
naming the op (NumPy would have changed the dtype: the mean of int64 is float64, the
quotient of two ints a float).
"""
import numbers

import numpy as np

from . import autograd, backend, ops


def _check_float(dtype, what):
    if not np.issubdtype(dtype, np.floating):
        raise TypeError(f"{what}: needs a floating-point dtype (float32 or float64), got {dtype}")


def _floating(tensor, op):
    """Arithmetic and reductions take floating-point tensors only (the module docstring says why)."""
    if not np.issubdtype(tensor.dtype, np.floating):
        raise TypeError(f"{op}: needs a floating-point tensor (float32 or float64), got "
                        f"{tensor.dtype}; integer and bool tensors hold labels and indices -- "
                        "convert with .astype(np.float32) for arithmetic")
    return tensor


class Tensor:
    """An n-d array with reverse-mode autograd.

    ``Tensor(data, requires_grad=False)`` wraps an existing array without copying
    and without changing its dtype; use :func:`tensor` to build one from lists.
    """

    __array_priority__ = 1000  # so ``ndarray * Tensor`` defers to Tensor.__rmul__

    def __init__(self, data, requires_grad=False):
        if isinstance(data, Tensor):
            data = data.data
        if not (isinstance(data, np.ndarray) or backend.is_gpu_array(data)):
            data = np.asarray(data)
        if requires_grad:
            _check_float(data.dtype, "Tensor(requires_grad=True)")
        self.data = data
        self.requires_grad = bool(requires_grad)
        self.grad = None
        self._ctx = None            # the op that made this tensor (None for leaves)
        self._retains_grad = False  # non-leaves keep .grad only when asked to

    # ------------------------------------------------------------------ facts
    shape = property(lambda self: tuple(self.data.shape), doc="Size of each axis.")
    dtype = property(lambda self: self.data.dtype, doc="The NumPy dtype of the data.")
    ndim = property(lambda self: self.data.ndim, doc="Number of axes.")
    size = property(lambda self: int(self.data.size), doc="Number of elements.")
    device = property(lambda self: "cuda" if backend.is_gpu_array(self.data) else "cpu",
                      doc="``'cpu'`` or ``'cuda'``.")
    is_leaf = property(lambda self: self._ctx is None,
                       doc="True for tensors made by the user rather than by an op.")
    grad_fn = property(lambda self: self._ctx,
                       doc="The node of the op that made this tensor (None for a leaf), as in "
                           "PyTorch; read-only. Its ``function`` is the op's Function class, "
                           "its ``inputs`` what the op read.")

    def __repr__(self):
        body = np.array2string(self.numpy(), separator=", ", prefix="tensor(")
        grad = ", requires_grad=True" if self.requires_grad else ""
        device = ", device='cuda'" if self.device == "cuda" else ""
        return f"tensor({body}, dtype={self.dtype}{device}{grad})"

    def __len__(self):
        return self.shape[0]

    # ------------------------------------------------------------------ conversion
    def numpy(self):
        """The data as a NumPy array in host memory (copied from the GPU if needed)."""
        return backend.to_device(self.data, "cpu")

    def item(self):
        """The value of a one-element tensor as a Python number."""
        if self.size != 1:
            raise ValueError(f"item: only one-element tensors have an item, got shape {self.shape}")
        return self.numpy().reshape(()).item()

    def detach(self):
        """The same data, cut from the graph (no gradient flows through it)."""
        return Tensor(self.data)

    def astype(self, dtype):
        """A copy converted to ``dtype`` -- the only way tinyres changes a dtype."""
        return Tensor(self.data.astype(dtype), requires_grad=self.requires_grad and self.is_leaf)

    def to(self, device):
        """The tensor on ``"cpu"`` or ``"cuda"``; gradients flow back to the original device."""
        if device == self.device:
            return self
        return ops.ToDevice.apply(self, device)

    def retain_grad(self):
        """Keep ``.grad`` on this non-leaf tensor after backward (useful for inspecting a graph)."""
        self._retains_grad = True
        return self

    # ------------------------------------------------------------------ autograd
    def backward(self, grad=None, retain_graph=False):
        """Compute the gradient of this tensor with respect to every leaf that requires grad.

        ``grad`` is dL/d(self) with self's shape; it may be omitted only for a scalar
        (one-element) tensor, where it is 1.  Gradients accumulate into ``leaf.grad``.
        """
        if not self.requires_grad:
            raise RuntimeError("backward: this tensor does not require grad and has no graph; "
                               "create the inputs with requires_grad=True")
        xp = backend.xp_of(self.data)
        if grad is None:
            if self.size != 1:
                raise ValueError(
                    f"backward: a non-scalar tensor of shape {self.shape} needs an explicit "
                    "gradient argument (dL/d output of the same shape); call .sum() first "
                    "or pass grad=")
            grad = xp.ones(self.shape, dtype=self.dtype)
        else:
            grad = grad.data if isinstance(grad, Tensor) else xp.asarray(grad)
            if grad.dtype != self.dtype:
                raise TypeError(f"backward: grad has dtype {grad.dtype} but the tensor is "
                                f"{self.dtype}; pass a gradient of the same dtype")
            if grad.shape != self.shape:
                raise ValueError(f"backward: grad has shape {grad.shape}, expected {self.shape}")
        autograd.backward(self, grad, retain_graph=retain_graph)

    def _accumulate_grad(self, grad):
        if grad.dtype != self.dtype:
            raise TypeError(f"backward: gradient dtype {grad.dtype} differs from the tensor's "
                            f"{self.dtype}; an op changed the dtype")
        if self.grad is None:
            self.grad = Tensor(grad.copy())  # copy: one array can be the gradient of two inputs
        else:
            self.grad = Tensor(self.grad.data + grad)

    def zero_grad(self):
        """Forget the accumulated gradient."""
        self.grad = None

    # ------------------------------------------------------------------ operators
    def _operand(self, other, op):
        """Check a second operand: a Tensor or array of the same dtype and device, or a number."""
        _floating(self, op)
        if isinstance(other, numbers.Number):
            return other  # NumPy keeps the tensor's dtype for a Python scalar
        if not isinstance(other, Tensor):
            other = Tensor(other)
        if other.dtype != self.dtype:
            raise TypeError(f"{op}: operands have dtypes {self.dtype} and {other.dtype}; "
                            "tinyres never converts silently -- use .astype() on one of them")
        if other.device != self.device:
            raise backend.DeviceMismatchError(
                f"{op}: operands live on {self.device} and {other.device}; move one with .to()")
        return other

    def __add__(self, other):
        return ops.Add.apply(self, self._operand(other, "add"))

    def __radd__(self, other):
        return ops.Add.apply(self._operand(other, "add"), self)

    def __sub__(self, other):
        return ops.Sub.apply(self, self._operand(other, "sub"))

    def __rsub__(self, other):
        return ops.Sub.apply(self._operand(other, "sub"), self)

    def __mul__(self, other):
        return ops.Mul.apply(self, self._operand(other, "mul"))

    def __rmul__(self, other):
        return ops.Mul.apply(self._operand(other, "mul"), self)

    def __truediv__(self, other):
        return ops.Div.apply(self, self._operand(other, "div"))

    def __rtruediv__(self, other):
        return ops.Div.apply(self._operand(other, "div"), self)

    def __neg__(self):
        return ops.Neg.apply(_floating(self, "neg"))

    def __pow__(self, exponent):
        if not isinstance(exponent, numbers.Number):
            raise TypeError(f"pow: the exponent must be a number, got {type(exponent).__name__} "
                            "(tinyres has no tensor exponents)")
        return ops.Pow.apply(_floating(self, "pow"), exponent)

    def __rpow__(self, base):
        raise TypeError(f"pow: the exponent must be a number, got a Tensor (tinyres has no "
                        f"tensor exponents: {type(base).__name__} ** Tensor); for e^x use x.exp()")

    def __matmul__(self, other):
        other = self._operand(other, "matmul")
        if isinstance(other, numbers.Number) or self.ndim < 2 or other.ndim < 2:
            raise ValueError(f"matmul: expects two tensors with at least 2 dimensions, "
                             f"got shapes {self.shape} and {getattr(other, 'shape', ())}")
        if self.shape[-1] != other.shape[-2]:
            raise ValueError(f"matmul: inner dimensions differ: {self.shape} @ {other.shape}")
        return ops.MatMul.apply(self, other)

    def exp(self):
        """e^x, elementwise."""
        return ops.Exp.apply(_floating(self, "exp"))

    def log(self):
        """Natural logarithm, elementwise (NaN below 0 and -inf at 0, as in PyTorch)."""
        return ops.Log.apply(_floating(self, "log"))

    def sum(self, axis=None, keepdims=False):
        """Sum over ``axis``: None (every axis), an int or a tuple of distinct ints.

        A 0-d tensor takes axis 0 or -1, as in PyTorch; ``axis=()`` is refused as ambiguous.
        """
        return ops.Sum.apply(_floating(self, "sum"), axis=axis, keepdims=keepdims)

    def mean(self, axis=None, keepdims=False):
        """Mean over ``axis`` (as in :meth:`sum`); over an axis of size 0 it is NaN, as in PyTorch."""
        return ops.Mean.apply(_floating(self, "mean"), axis=axis, keepdims=keepdims)

    def max(self, axis=None, keepdims=False):
        """Maximum over ``axis``, as PyTorch's ``amax`` (``axis`` as in :meth:`sum`).

        The gradient is shared equally among tied maxima; an axis of size 0 is refused.
        """
        return ops.Max.apply(_floating(self, "max"), axis=axis, keepdims=keepdims)

    def reshape(self, *shape):
        """The same elements in another shape (one axis may be -1)."""
        shape = tuple(shape[0]) if len(shape) == 1 and not isinstance(shape[0], int) else shape
        try:
            np.empty(self.shape, dtype=np.uint8).reshape(shape)  # validate cheaply
        except ValueError:
            raise ValueError(f"reshape: cannot reshape a tensor of shape {self.shape} "
                             f"({self.size} elements) into {shape}") from None
        return ops.Reshape.apply(self, shape)

    def permute(self, *axes):
        """Reorder the axes, e.g. ``x.permute(0, 2, 3, 1)`` for NCHW -> NHWC."""
        axes = tuple(axes[0]) if len(axes) == 1 and not isinstance(axes[0], int) else axes
        if len(axes) != self.ndim or sorted(a % self.ndim for a in axes) != list(range(self.ndim)):
            raise ValueError(f"permute: {axes} is not a permutation of the {self.ndim} axes")
        return ops.Permute.apply(self, tuple(a % self.ndim for a in axes))

    def transpose(self, dim0, dim1):
        """Swap two axes (PyTorch's meaning); a 0-d tensor takes dims 0 and -1 and stays as it is."""
        span = max(self.ndim, 1)   # PyTorch counts a 0-d tensor's dims as if it had one
        for dim in (dim0, dim1):
            if isinstance(dim, bool) or not isinstance(dim, numbers.Integral) or not -span <= dim < span:
                raise ValueError(f"transpose: dim {dim!r} is out of range for a tensor of "
                                 f"shape {self.shape}")
        axes = list(range(self.ndim))
        if self.ndim:
            axes[dim0], axes[dim1] = axes[dim1], axes[dim0]
        return ops.Permute.apply(self, tuple(axes))

    @property
    def T(self):
        """All axes reversed (the matrix transpose for 2-D tensors)."""
        return self.permute(tuple(reversed(range(self.ndim))))

    def __getitem__(self, index):
        parts = index if isinstance(index, tuple) else (index,)
        for part in parts:
            if not (part is None or part is Ellipsis or isinstance(part, (int, np.integer, slice))):
                raise TypeError(f"getitem: only basic indexing (ints, slices, None, ...) is "
                                f"differentiable here, got {type(part).__name__}")
        return ops.GetItem.apply(self, index)

    def pad(self, pad_width):
        """Zero padding, NumPy's convention: ``pad_width`` is one (before, after) pair per axis."""
        pad_width = tuple((int(b), int(a)) for b, a in pad_width)
        if len(pad_width) != self.ndim or any(b < 0 or a < 0 for b, a in pad_width):
            raise ValueError(f"pad: expected {self.ndim} non-negative (before, after) pairs "
                             f"for a tensor of shape {self.shape}, got {pad_width}")
        return ops.Pad.apply(self, pad_width)


def tensor(data, requires_grad=False, dtype=None, device=None):
    """Make a Tensor from an array, list or number.

    The dtype is kept as given (NumPy's rules for lists: Python floats become float64);
    ``device`` defaults to ``"cuda"`` under the cupy backend, else ``"cpu"``.
    """
    if isinstance(data, Tensor):
        data = data.data
    if not (isinstance(data, np.ndarray) or backend.is_gpu_array(data)):
        data = np.asarray(data, dtype=dtype)
    elif dtype is not None and data.dtype != dtype:
        data = data.astype(dtype)
    data = backend.to_device(data, device or backend.default_device())
    return Tensor(data, requires_grad=requires_grad)


def zeros(shape, dtype=np.float32, requires_grad=False, device=None):
    """A tensor of zeros."""
    return tensor(np.zeros(shape, dtype=dtype), requires_grad=requires_grad, device=device)


def ones(shape, dtype=np.float32, requires_grad=False, device=None):
    """A tensor of ones."""
    return tensor(np.ones(shape, dtype=dtype), requires_grad=requires_grad, device=device)
