"""The CPU backends' column-blocked matrix product (``backend/cpu_gemm.py``)."""
import numpy as np
import pytest

from conftest import assert_close
from tinyres.backend import cpu_gemm


def test_column_block_keeps_each_block_within_the_small_product_size():
    block = cpu_gemm.column_block(16, 144, 2048)     # the first ResNet-20 stage, one chunk
    assert block == 434
    assert 16 * 144 * block <= cpu_gemm.SMALL_PRODUCT_SIZE < 16 * 144 * (block + 1)


@pytest.mark.parametrize("rows, inner, columns, why", [
    (64, 576, 512, "blocks of 27 columns would lose to the call overhead"),
    (16, 144, 300, "the whole product is already small"),
    (16, 144, 434, "exactly one block"),
])
def test_column_block_leaves_some_products_whole(rows, inner, columns, why):
    assert cpu_gemm.column_block(rows, inner, columns) == columns, why


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_matmul_in_blocks_equals_one_product(dtype, rng):
    a = rng.standard_normal((16, 144)).astype(dtype)
    b = rng.standard_normal((144, 1000)).astype(dtype)   # blocks of 434, 434 and 132
    out = cpu_gemm.matmul(a, b)
    assert out.shape == (16, 1000) and out.dtype == dtype
    assert_close(out, a @ b, dtype)


def test_matmul_of_views(rng):
    # conv2d's backward multiplies by W^T, a transposed view; b can be a strided slice
    w = rng.standard_normal((16, 144))
    b = rng.standard_normal((16, 3000))[:, ::2]
    assert_close(cpu_gemm.matmul(w.T, b), w.T @ b, np.float64)
    wide = rng.standard_normal((144, 2000))[:, 100:1900]
    assert_close(cpu_gemm.matmul(w, wide), w @ wide, np.float64)


def test_matmul_of_a_whole_product_is_plain_matmul(rng):
    a, b = rng.standard_normal((4, 5)), rng.standard_normal((5, 6))
    np.testing.assert_array_equal(cpu_gemm.matmul(a, b), a @ b)


def test_matmul_with_no_columns(rng):
    out = cpu_gemm.matmul(rng.standard_normal((16, 144)), np.zeros((144, 0)))
    assert out.shape == (16, 0)


@pytest.mark.parametrize("inner", [1, 3])
@pytest.mark.parametrize("a_shape, b_shape", [((16, 5, None), (16, None, 7)),   # a stack of pairs
                                              ((5, None), (4, None, 7))])       # one a for every b
def test_stacked_matmul_equals_numpy_matmul(inner, a_shape, b_shape, rng):
    a = rng.standard_normal([inner if size is None else size for size in a_shape]).astype(np.float32)
    b = rng.standard_normal([inner if size is None else size for size in b_shape]).astype(np.float32)
    expected = np.matmul(a, b)
    out = np.empty_like(expected)
    assert cpu_gemm.stacked_matmul(a, b, out=out) is out
    assert_close(out, expected, np.float32)
