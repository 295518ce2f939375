"""The Tensor's operators: float64 gradchecks, parity with PyTorch, dtype rules."""
import numpy as np
import pytest
import torch

import tinyres as tr
from conftest import assert_close, to_torch

# name -> (tinyres function, torch function, input shapes); inputs of log must be positive
BINARY_SHAPES = [((3, 4), (3, 4)), ((3, 1), (4,)), ((2, 3, 4), (1, 4)), ((5,), ())]
UNARY_CASES = {
    "neg": (lambda a: -a, lambda a: -a),
    "exp": (lambda a: a.exp(), torch.exp),
    "log": (lambda a: (a * a + 0.5).log(), lambda a: torch.log(a * a + 0.5)),
    "pow": (lambda a: a ** 3, lambda a: a ** 3),
    "pow_fraction": (lambda a: (a * a + 1.0) ** 0.5, lambda a: (a * a + 1.0) ** 0.5),
    "sum_all": (lambda a: a.sum(), lambda a: a.sum()),
    "sum_axis": (lambda a: a.sum(axis=1), lambda a: a.sum(dim=1)),
    "sum_keepdims": (lambda a: a.sum(axis=(0, 2), keepdims=True), lambda a: a.sum(dim=(0, 2), keepdim=True)),
    "mean_axis": (lambda a: a.mean(axis=-1), lambda a: a.mean(dim=-1)),
    "mean_all": (lambda a: a.mean(), lambda a: a.mean()),
    "max_axis": (lambda a: a.max(axis=1), lambda a: torch.amax(a, dim=1)),
    "max_keepdims": (lambda a: a.max(axis=(1, 2), keepdims=True), lambda a: torch.amax(a, dim=(1, 2), keepdim=True)),
    "reshape": (lambda a: a.reshape(4, -1), lambda a: a.reshape(4, -1)),
    "permute": (lambda a: a.permute(2, 0, 1), lambda a: a.permute(2, 0, 1)),
    "transpose": (lambda a: a.transpose(0, 2), lambda a: a.transpose(0, 2)),
    "T": (lambda a: a.T, lambda a: a.permute(2, 1, 0)),
    "slice": (lambda a: a[1:, ::2, -1], lambda a: a[1:, ::2, -1]),
    "slice_none": (lambda a: a[None, 0, ..., 1:3], lambda a: a[None, 0, ..., 1:3]),
    "pad": (lambda a: a.pad(((0, 0), (1, 2), (3, 0))),
            lambda a: torch.nn.functional.pad(a, (3, 0, 1, 2))),
}
BINARY_CASES = {
    "add": lambda a, b: a + b,
    "sub": lambda a, b: a - b,
    "mul": lambda a, b: a * b,
    "div": lambda a, b: a / (b * b + 1.0),
}


@pytest.mark.parametrize("name", UNARY_CASES)
def test_unary_gradcheck_and_torch_parity(name, rng):
    ours, theirs = UNARY_CASES[name]
    data = rng.standard_normal((2, 3, 4))
    x = tr.tensor(data, requires_grad=True)
    tr.gradcheck(ours, [x])

    x.grad = None
    out = ours(x)
    reference_x = to_torch(data, requires_grad=True)
    reference = theirs(reference_x)
    assert_close(out, reference, np.float64)
    seed = rng.standard_normal(out.shape)
    out.backward(seed)
    reference.backward(torch.tensor(seed))
    assert_close(x.grad, reference_x.grad, np.float64)


@pytest.mark.parametrize("name", BINARY_CASES)
@pytest.mark.parametrize("shapes", BINARY_SHAPES, ids=str)
def test_binary_broadcast_gradcheck_and_torch_parity(name, shapes, rng):
    fn = BINARY_CASES[name]
    a_data, b_data = rng.standard_normal(shapes[0]), rng.standard_normal(shapes[1])
    a, b = tr.tensor(a_data, requires_grad=True), tr.tensor(b_data, requires_grad=True)
    tr.gradcheck(fn, [a, b])

    a.grad = b.grad = None
    out = fn(a, b)
    ta, tb = to_torch(a_data, True), to_torch(b_data, True)
    reference = fn(ta, tb)
    assert_close(out, reference, np.float64)
    out.sum().backward()
    reference.sum().backward()
    assert a.grad.shape == a.shape and b.grad.shape == b.shape  # broadcast undone
    assert_close(a.grad, ta.grad, np.float64)
    assert_close(b.grad, tb.grad, np.float64)


@pytest.mark.parametrize("shapes", [((3, 4), (4, 5)), ((2, 3, 4), (4, 2)), ((2, 1, 3, 4), (5, 4, 2))], ids=str)
def test_matmul(shapes, rng):
    a_data, b_data = rng.standard_normal(shapes[0]), rng.standard_normal(shapes[1])
    a, b = tr.tensor(a_data, requires_grad=True), tr.tensor(b_data, requires_grad=True)
    tr.gradcheck(lambda a, b: a @ b, [a, b])
    a.grad = b.grad = None
    (a @ b).sum().backward()
    ta, tb = to_torch(a_data, True), to_torch(b_data, True)
    (ta @ tb).sum().backward()
    assert_close(a.grad, ta.grad, np.float64)
    assert_close(b.grad, tb.grad, np.float64)


def test_scalar_operands_and_reflected_operators(rng):
    x = tr.tensor(rng.standard_normal((3,)) + 3.0, requires_grad=True)
    tr.gradcheck(lambda x: 2.0 - x + 1.5 * x / 3.0 + 1.0 / x, [x])


def test_gradient_accumulates_when_a_tensor_is_used_twice():
    x = tr.tensor(np.array([1.0, -2.0, 3.0]), requires_grad=True)
    (x * x + x).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), 2 * x.numpy() + 1)


def test_gradients_accumulate_across_backward_calls_until_zeroed():
    x = tr.tensor(np.array([1.0, 2.0]), requires_grad=True)
    (x * 3.0).sum().backward()
    (x * 3.0).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [6.0, 6.0])
    x.zero_grad()
    assert x.grad is None


def test_diamond_graph_sums_both_paths():
    x = tr.tensor(np.array(2.0), requires_grad=True)
    y = x.exp()
    z = y * y + y          # dz/dx = (2y + 1) * y
    z.backward()
    y_value = np.exp(2.0)
    assert x.grad.item() == pytest.approx((2 * y_value + 1) * y_value, rel=1e-12)


def test_requires_grad_propagates_and_no_grad_stops_it():
    a = tr.tensor(np.ones(3), requires_grad=True)
    b = tr.tensor(np.ones(3))
    assert (a + b).requires_grad and not (b * 2.0).requires_grad
    with tr.no_grad():
        c = a * 2.0
        assert not tr.is_grad_enabled()
    assert not c.requires_grad and c.is_leaf
    assert tr.is_grad_enabled()


def test_detach_cuts_the_graph():
    a = tr.tensor(np.array([1.0, 2.0]), requires_grad=True)
    d = (a * 2.0).detach()
    assert not d.requires_grad and d.is_leaf
    (a * d).sum().backward()
    np.testing.assert_array_equal(a.grad.numpy(), [2.0, 4.0])


def test_graph_is_released_unless_retained():
    a = tr.tensor(np.array([1.0, 2.0]), requires_grad=True)
    loss = (a * a).sum()
    loss.backward(retain_graph=True)
    loss.backward()
    np.testing.assert_array_equal(a.grad.numpy(), [4.0, 8.0])
    with pytest.raises(RuntimeError, match="already released"):
        loss.backward()


def test_released_graph_frees_saved_arrays():
    a = tr.tensor(np.ones(4), requires_grad=True)
    product = a * a
    ctx = product._ctx
    product.sum().backward()
    assert ctx.released and ctx.saved == () and ctx.inputs == ()


def test_grad_fn_is_the_op_that_made_the_tensor_and_is_read_only():
    a = tr.tensor(np.array([1.0, 2.0]), requires_grad=True)
    product = a * a
    assert a.grad_fn is None and product.grad_fn is product._ctx
    assert product.grad_fn.function.__name__ == "Mul"
    assert len(product.grad_fn.inputs) == 2 and all(t is a for t in product.grad_fn.inputs)
    assert (product.sum()).grad_fn.inputs[0] is product
    assert tr.tensor(np.ones(2)).exp().grad_fn is None      # nothing wants a gradient
    with tr.no_grad():
        assert (a * a).grad_fn is None
    assert product.detach().grad_fn is None
    with pytest.raises(AttributeError):
        product.grad_fn = None
    assert product.grad_fn is not None


def test_retain_grad_keeps_intermediate_gradient():
    a = tr.tensor(np.array([1.0, 2.0]), requires_grad=True)
    hidden = (a * 3.0).retain_grad()
    (hidden * hidden).sum().backward()
    np.testing.assert_array_equal(hidden.grad.numpy(), [6.0, 12.0])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_dtype_is_kept_through_every_operator(dtype, rng):
    x = tr.tensor(rng.standard_normal((2, 3)).astype(dtype), requires_grad=True)
    out = (((x * 2.0 + 1.0) / 3.0 - x) ** 2).exp().log().sum(axis=1).max() + x.mean()
    assert out.dtype == dtype
    out.backward()
    assert x.grad.dtype == dtype


def test_mixing_dtypes_is_refused():
    a = tr.tensor(np.ones(2, dtype=np.float32))
    b = tr.tensor(np.ones(2, dtype=np.float64))
    with pytest.raises(TypeError, match="float32 and float64"):
        a + b
    assert (a.astype(np.float64) + b).dtype == np.float64


def test_backward_on_non_scalar_without_gradient_is_refused():
    a = tr.tensor(np.ones((2, 3)), requires_grad=True)
    with pytest.raises(ValueError, match=r"non-scalar tensor of shape \(2, 3\)"):
        (a * 2.0).backward()


def test_backward_without_graph_is_refused():
    with pytest.raises(RuntimeError, match="does not require grad"):
        tr.tensor(np.ones(1)).backward()


def test_integer_tensor_cannot_require_grad():
    with pytest.raises(TypeError, match="floating-point"):
        tr.tensor(np.arange(3), requires_grad=True)


@pytest.mark.parametrize("bad, message", [
    (lambda t: t.reshape(5, 5), "cannot reshape"),
    (lambda t: t.permute(0, 0), "not a permutation"),
    (lambda t: t @ t, "inner dimensions"),
    (lambda t: t.pad(((1, -1), (0, 0))), "non-negative"),
    (lambda t: t[np.array([0, 1])], "basic indexing"),
    (lambda t: t ** t, "exponent must be a number"),
    (lambda t: t.sum(axis=2), "out of range"),
])
def test_bad_shape_arguments_explain_themselves(bad, message):
    t = tr.tensor(np.ones((2, 3)), requires_grad=True)
    with pytest.raises((ValueError, TypeError), match=message):
        bad(t)


def test_numpy_item_and_repr():
    t = tr.tensor(np.array([[1.5]], dtype=np.float32), requires_grad=True)
    assert t.item() == 1.5 and isinstance(t.numpy(), np.ndarray)
    assert "requires_grad=True" in repr(t) and "float32" in repr(t)
    with pytest.raises(ValueError, match="one-element"):
        tr.zeros((2,)).item()


def test_deep_graph_does_not_hit_the_recursion_limit():
    x = tr.tensor(np.array(1.0), requires_grad=True)
    y = x
    for _ in range(5000):
        y = y * 1.0
    y.backward()
    assert x.grad.item() == 1.0


def test_backward_gradient_of_another_dtype_is_refused():
    a = tr.tensor(np.ones(2, dtype=np.float32), requires_grad=True)
    with pytest.raises(TypeError, match="grad has dtype float64 but the tensor is float32"):
        (a * 2.0).backward(np.ones(2))


# --------------------------------------------------------------------------- integer tensors
@pytest.mark.parametrize("op, call", [
    ("neg", lambda t: -t),
    ("add", lambda t: t + t),
    ("sub", lambda t: t - 1),
    ("mul", lambda t: 2.5 * t),
    ("div", lambda t: t / t),
    ("pow", lambda t: t ** 2),
    ("matmul", lambda t: t.reshape(2, 2) @ t.reshape(2, 2)),
    ("exp", lambda t: t.exp()),
    ("log", lambda t: t.log()),
    ("sum", lambda t: t.sum()),
    ("mean", lambda t: t.mean()),
    ("max", lambda t: t.max()),
])
@pytest.mark.parametrize("dtype", [np.int64, np.int32, np.bool_])
def test_arithmetic_and_reductions_refuse_integer_and_bool_tensors(op, call, dtype):
    # one rule: NumPy would change the dtype (int64 mean -> float64, int / int -> float64,
    # -bool -> its own error); tinyres refuses and names the op
    t = tr.tensor(np.array([1, 0, 1, 1], dtype=dtype))
    with pytest.raises(TypeError, match=rf"^{op}: needs a floating-point tensor .*got {np.dtype(dtype)}"):
        call(t)


def test_integer_tensors_still_change_shape_and_keep_their_dtype():
    t = tr.tensor(np.arange(6, dtype=np.int64).reshape(2, 3))
    for changed in (t.reshape(3, 2), t.permute(1, 0), t.transpose(0, 1), t.T, t[1:, ::2],
                    t.pad(((1, 0), (0, 1)))):
        assert changed.dtype == np.int64
    np.testing.assert_array_equal(t.transpose(0, 1).numpy(), np.arange(6).reshape(2, 3).T)


# --------------------------------------------------------------------------- reductions and transpose, PyTorch's edge cases
EDGE_CASES = {
    # name: (tinyres, torch, input shape) -- 0-d tensors take axis 0 and -1, as in PyTorch
    "sum_0d_axis0": (lambda a: a.sum(axis=0), lambda a: a.sum(dim=0), ()),
    "mean_0d_axis-1_keepdims": (lambda a: a.mean(axis=-1, keepdims=True), lambda a: a.mean(dim=-1, keepdim=True), ()),
    "max_0d_axis0": (lambda a: a.max(axis=0), lambda a: torch.amax(a, dim=0), ()),
    "transpose_0d": (lambda a: a.transpose(0, -1), lambda a: a.transpose(0, -1), ()),
    "transpose_1d": (lambda a: a.transpose(0, 0), lambda a: a.transpose(0, 0), (3,)),
    # empty tensors: the sum of nothing is 0, the mean of nothing NaN, an empty result stays empty
    "sum_empty_axis": (lambda a: a.sum(axis=1), lambda a: a.sum(dim=1), (3, 0)),
    "mean_empty_axis": (lambda a: a.mean(axis=1), lambda a: a.mean(dim=1), (3, 0)),
    "max_over_a_full_axis_of_an_empty_tensor": (lambda a: a.max(axis=0), lambda a: torch.amax(a, dim=0), (4, 0)),
}


@pytest.mark.parametrize("name", EDGE_CASES)
def test_reduction_and_transpose_edge_cases_match_torch(name, rng):
    ours, theirs, shape = EDGE_CASES[name]
    data = rng.standard_normal(shape)
    x, reference_x = tr.tensor(data, requires_grad=True), to_torch(data, requires_grad=True)
    out, reference = ours(x), theirs(reference_x)
    assert out.shape == tuple(reference.shape) and out.dtype == np.float64
    np.testing.assert_allclose(out.numpy(), reference.detach().numpy(), rtol=1e-12)   # NaN == NaN
    seed = rng.standard_normal(out.shape)
    out.backward(seed)
    reference.backward(torch.tensor(seed))
    assert_close(x.grad, reference_x.grad, np.float64)
    if x.size:
        tr.gradcheck(ours, [tr.tensor(data, requires_grad=True)])


@pytest.mark.parametrize("bad, message", [
    (lambda t: t.sum(axis=()), r"sum: axis=\(\) is ambiguous .* pass axis=None"),
    (lambda t: t.max(axis=(0, -2)), r"max: axis \(0, -2\) names the same axis twice"),
    (lambda t: t.mean(axis=2), r"mean: axis 2 is out of range for a tensor of shape \(2, 3\)"),
    (lambda t: t[:, :0].max(axis=1), r"max: the maximum over an axis of size 0 is undefined \(axis 1 of a tensor of shape \(2, 0\)\)"),
    (lambda t: t.transpose(0, 2), r"transpose: dim 2 is out of range for a tensor of shape \(2, 3\)"),
    (lambda t: tr.tensor(np.array(1.0)).transpose(1, 0), r"transpose: dim 1 is out of range for a tensor of shape \(\)"),
    (lambda t: tr.tensor(np.array(1.0)).permute(0), r"permute: \(0,\) is not a permutation of the 0 axes"),
    (lambda t: 2.0 ** t, r"pow: the exponent must be a number, got a Tensor"),
])
def test_reduction_and_transpose_errors_name_the_op(bad, message):
    t = tr.tensor(np.ones((2, 3)), requires_grad=True)
    with pytest.raises((ValueError, TypeError), match=message):
        bad(t)


def test_autograd_tensor_and_ops_close_their_import_cycle_once():
    """tensor.py imports autograd and ops, autograd needs Tensor: one late import at the end
    of autograd.py closes the cycle, and no function imports anything at call time."""
    import ast
    import pathlib
    package = pathlib.Path(tr.__file__).parent
    for name in ("autograd.py", "tensor.py", "ops.py"):
        tree = ast.parse((package / name).read_text())
        inside = [node for function in ast.walk(tree)
                  if isinstance(function, (ast.FunctionDef, ast.AsyncFunctionDef))
                  for node in ast.walk(function) if isinstance(node, (ast.Import, ast.ImportFrom))]
        assert not inside, f"{name} imports inside a function (line {inside[0].lineno})"
    autograd_tree = ast.parse((package / "autograd.py").read_text())
    last = autograd_tree.body[-1]
    assert isinstance(last, ast.ImportFrom) and last.module == "tensor" and last.level == 1
