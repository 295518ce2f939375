"""Shared fixtures: every backend-aware test runs once per backend.

A backend that cannot run here (no numba, no CUDA device) is reported as skipped
with the reason, never silently passed.
"""
import numpy as np
import pytest

import tinyres as tr
from tinyres.backend import BACKEND_NAMES, why_unavailable

DTYPES = [np.float64, np.float32]

# Tolerances, named once per dtype (see DESIGN.md).  Three tables, for three comparisons:
# RTOL/ATOL (op level): a tinyres op against PyTorch -- other algorithms, other orders of
#   summation, so the slack is wider;
# KERNEL_RTOL (backend parity): a Numba or CuPy kernel against the NumPy reference kernel
#   on the same input -- the same algorithm, so only the order of the sums may differ.
RTOL = {np.float64: 1e-10, np.float32: 1e-4}
ATOL = {np.float64: 1e-12, np.float32: 1e-5}
KERNEL_RTOL = {np.float64: 1e-12, np.float32: 1e-5}
# WINOGRAD_TOLERANCE: Winograd's F(2x2, 3x3) against the direct sums -- its transforms round
# differently, so the error is judged against the largest value of the array, not per entry.
WINOGRAD_TOLERANCE = {np.float64: 1e-12, np.float32: 5e-6}


def tolerance(dtype):
    """(rtol, atol) for comparing results computed in ``dtype``."""
    dtype = np.dtype(dtype).type
    return RTOL[dtype], ATOL[dtype]


@pytest.fixture(params=BACKEND_NAMES)
def backend(request):
    """Select each backend in turn for the test; skip the ones this machine cannot run."""
    reason = why_unavailable(request.param)
    if reason is not None:
        pytest.skip(f"backend {request.param!r} unavailable: {reason}")
    with tr.use_backend(request.param):
        yield request.param


@pytest.fixture
def rng():
    return np.random.default_rng(0)


@pytest.fixture
def threads():
    """``tr.set_num_threads`` for a test that changes the thread count; restores it afterwards."""
    previous = tr.get_num_threads()
    yield tr.set_num_threads
    tr.set_num_threads(previous)


def assert_close(actual, expected, dtype, scale=None):
    """Compare with the dtype's relative tolerance; entries near zero are judged against
    the array's overall magnitude, since rounding error scales with the largest terms."""
    rtol, _ = tolerance(dtype)
    actual = actual.numpy() if hasattr(actual, "numpy") else np.asarray(actual)
    expected = expected.detach().numpy() if hasattr(expected, "detach") else np.asarray(expected)
    magnitude = scale if scale is not None else max(1.0, float(np.abs(expected).max(initial=0.0)))
    np.testing.assert_allclose(actual, expected, rtol=rtol, atol=rtol * magnitude)


def assert_kernel_matches(actual, expected, what, exact=False, array_type=None):
    """A kernel's result equals the reference kernel's in type, shape, dtype and value.

    exact=False: |actual - expected| <= rtol * (|expected| + max(1, max|expected|)), rtol
    from KERNEL_RTOL.  The absolute part scales with the largest magnitude because an entry
    that is a small difference of large terms (a batch-norm gradient, a sum of cancelling
    taps) carries rounding error of the size of the terms, not of the entry.
    exact=True: bit for bit (NaN equals NaN) -- for copies, maxima, argmax and relu.

    actual: a NumPy array, or a device array with ``.get()`` (cupy), copied to the host;
    ``array_type`` (say ``cupy.ndarray``), when given, is the type ``actual`` must have.
    expected: a NumPy array of the same shape.  ``what`` names the kernel in the messages.
    """
    returned = f"{type(actual).__module__}.{type(actual).__qualname__}"
    if array_type is not None:   # numpy.ndarray and cupy.ndarray share a __name__
        expected_type = f"{array_type.__module__}.{array_type.__qualname__}"
        assert isinstance(actual, array_type), \
            f"{what}: returned {returned}, expected {expected_type}"
    host = actual.get() if hasattr(actual, "get") else actual
    assert isinstance(host, np.ndarray), f"{what}: returned {returned}, expected an array"
    assert host.shape == expected.shape, f"{what}: shape {host.shape}, expected {expected.shape}"
    assert host.dtype == expected.dtype, f"{what}: dtype {host.dtype}, expected {expected.dtype}"
    if exact:
        np.testing.assert_array_equal(host, expected, err_msg=what)
        return
    rtol = KERNEL_RTOL[expected.dtype.type]
    magnitude = max(1.0, float(np.abs(expected).max(initial=0.0)))
    np.testing.assert_allclose(host, expected, rtol=rtol, atol=rtol * magnitude, err_msg=what)


def to_torch(array, requires_grad=False):
    """A torch tensor with a copy of the data (torch is the reference, never used by tinyres)."""
    import torch
    return torch.tensor(np.array(array), requires_grad=requires_grad)
