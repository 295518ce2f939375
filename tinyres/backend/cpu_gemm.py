"""The convolution's short-and-wide matrix products, in column blocks the BLAS runs fastest.

A ResNet-20 layer multiplies a short matrix by a wide one: ``W @ cols`` is
(16, 144) @ (144, 2048) for one chunk of the first stage.  A BLAS library usually
*packs* both operands into cache-friendly panels before it multiplies.  With only 16 rows
in ``W`` every packed number of ``cols`` is used 16 times, so the packing costs nearly as
much as the arithmetic: one core of OpenBLAS runs this product at about half the speed
of a large square product.

OpenBLAS's AVX-512 build also has a *small-matrix* kernel that reads its operands where
they lie, without packing.  It takes a product only when M*K*N <= 100**3, so here the wide
operand is cut into blocks of columns just under that size.  For the first ResNet-20
stage the blocks ran up to twice as fast as the one packed call.  Where the blocks would be
too narrow for the call overhead to pay (a 3x3 layer with 64 channels or more, whose
products have rows enough for the packing to pay off) the product stays one call.  The
sizes were chosen by timing the OpenBLAS that NumPy's wheels ship (measured:
docs/results/measurements.md); with another BLAS the blocks are still products of a few
hundred columns, but whether they help there has not been measured.
"""
import numpy as np

# M*K*N of the largest product OpenBLAS (AVX-512 build) gives its unpacked small-matrix kernel
SMALL_PRODUCT_SIZE = 100 ** 3
# narrower blocks lose more to the fixed cost of each call than the kernel gains
MIN_BLOCK_COLUMNS = 64


def column_block(rows, inner, columns):
    """The number of columns per block for a (rows, inner) @ (inner, columns) product.

    The widest block with ``rows * inner * block <= SMALL_PRODUCT_SIZE``; ``columns``
    (one block: no split) when that is narrower than ``MIN_BLOCK_COLUMNS`` or not narrower
    than the whole matrix.
    """
    block = SMALL_PRODUCT_SIZE // max(1, rows * inner)
    if block < MIN_BLOCK_COLUMNS or block >= columns:
        return columns
    return block


def matmul(a, b):
    """``a @ b`` for a short ``a`` and a wide ``b``, one block of ``b``'s columns at a time.

    a: (M, K), b: (K, N) -> (M, N).  out[:, j:j+B] = a @ b[:, j:j+B] for each block of B
    columns (:func:`column_block`).  Each output column is one dot product per row of
    ``a`` either way; only the BLAS kernel that computes it changes.
    """
    rows, inner = a.shape
    columns = b.shape[1]
    block = column_block(rows, inner, columns)
    if block == columns:
        return a @ b
    out = np.empty((rows, columns), dtype=np.result_type(a, b))
    for start in range(0, columns, block):
        np.matmul(a, b[:, start:start + block], out=out[:, start:start + block])
    return out


def stacked_matmul(a, b, out):
    """out[i] = a[i] @ b[i] for a stack of products, into ``out``; broadcasting as ``np.matmul``.

    a: (..., M, K), b: (..., K, N) -> out: (..., M, N).  When K is 1 each product is an
    outer product, which ``np.matmul`` computes without the BLAS, about ten times slower
    than a BLAS product of K = 2 (measured: docs/results/measurements.md); a broadcast
    multiply computes the same numbers directly.
    """
    if a.shape[-1] == 1:
        return np.multiply(a, b, out=out)          # (.., M, 1) * (.., 1, N) -> (.., M, N)
    return np.matmul(a, b, out=out)

