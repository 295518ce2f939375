"""Shared fixtures: every backend-aware test runs once per backend.

A backend that cannot run here (no numba, no CUDA device) is reported as skipped
with the reason, never silently passed.
"""
import numpy as np
import pytest

import tinyres as tr
from tinyres.backend import BACKEND_NAMES, why_unavailable

# Tolerances, named once per dtype (see DESIGN.md).
RTOL = {np.float64: 1e-10, np.float32: 1e-4}
ATOL = {np.float64: 1e-12, np.float32: 1e-5}


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


def to_torch(array, requires_grad=False):
    """A torch tensor with a copy of the data (torch is the reference, never used by tinyres)."""
    import torch
    return torch.tensor(np.array(array), requires_grad=requires_grad)
