"""linear: gradcheck, PyTorch parity, errors."""
import numpy as np
import pytest
import torch.nn.functional as TF

import tinyres as tr
import tinyres.functional as F
from conftest import assert_close, to_torch


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("with_bias", [True, False])
def test_linear_matches_torch(dtype, with_bias, rng):
    values = [rng.standard_normal(s).astype(dtype) for s in ((4, 5), (3, 5), (3,))]
    if not with_bias:
        values[2] = None
    ours = [tr.tensor(v, requires_grad=True) if v is not None else None for v in values]
    theirs = [to_torch(v, requires_grad=True) if v is not None else None for v in values]
    out, reference = F.linear(*ours), TF.linear(*theirs)
    assert_close(out, reference, dtype)
    out.sum().backward()
    reference.sum().backward()
    for mine, expected in zip(ours, theirs):
        if mine is not None:
            assert_close(mine.grad, expected.grad, dtype)


def test_linear_gradcheck(rng):
    inputs = [tr.tensor(rng.standard_normal(s), requires_grad=True) for s in ((2, 3), (4, 3), (4,))]
    tr.gradcheck(F.linear, inputs)


def test_linear_bad_input():
    with pytest.raises(ValueError, match=r"linear: input has 3 features .* expects 5"):
        F.linear(tr.tensor(np.ones((2, 3))), tr.tensor(np.ones((4, 5))))
    with pytest.raises(ValueError, match=r"linear: bias has shape \(3,\), expected \(4,\)"):
        F.linear(tr.tensor(np.ones((2, 5))), tr.tensor(np.ones((4, 5))), tr.tensor(np.ones(3)))
    with pytest.raises(ValueError, match="linear: input must have 2 dimensions"):
        F.linear(tr.tensor(np.ones((2, 1, 5))), tr.tensor(np.ones((4, 5))))
