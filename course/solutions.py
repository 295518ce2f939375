"""Reference solutions of the gradient-check assignment (``notebooks/04_gradcheck_assignment.ipynb``).

Each function is ``backward(grad_output, cache)``: ``grad_output`` is dL/d(out) and
``cache`` is what the matching forward in :mod:`tinyres.lessons.exercises` saved.
They are written to be read next to the derivations in the notebook, and are
deliberately not calls of tinyres's own kernels, so the grader's comparison with
tinyres means something.

Each body uses only ``np`` and ``col2im``, which the notebook imports, so the
generators can paste it into a notebook's solution region as it is.  This file is
never installed: ``tinyres.lessons.course`` reads it by path.
"""
import numpy as np

from tinyres.backend.numpy_kernels import col2im


def relu_backward(grad_output, cache):
    """y = max(x, 0)  =>  dy/dx = 1 where x > 0, else 0, so dx = dy * [x > 0]."""
    return grad_output * (cache["x"] > 0)


def max_pool2d_backward(grad_output, cache):
    """Only the winner of each window moved the output, so it alone receives the gradient.

    Window (ho, wo) starts at padded row ho*sh and column wo*sw; its winning tap
    argmax = r*S + s sits at (ho*sh + r, wo*sw + s).  Windows overlap when the stride
    is smaller than the kernel, so one pixel can win several times: accumulate
    (``np.add.at``) rather than assign.
    """
    x, argmax = cache["x"], cache["argmax"]
    (_, kernel_w), (stride_h, stride_w), (pad_h, pad_w) = (
        cache["kernel_size"], cache["stride"], cache["padding"])
    batch, channels, height, width = x.shape
    out_h, out_w = grad_output.shape[2:]
    n, c, ho, wo = np.indices((batch, channels, out_h, out_w))
    rows = ho * stride_h + argmax // kernel_w
    cols = wo * stride_w + argmax % kernel_w
    grad_padded = np.zeros((batch, channels, height + 2 * pad_h, width + 2 * pad_w))
    np.add.at(grad_padded, (n, c, rows, cols), grad_output)
    return grad_padded[:, :, pad_h:pad_h + height, pad_w:pad_w + width]


def conv2d_backward(grad_output, cache):
    """The forward was one matrix product, Y = W @ cols, so its backward is two more:

        dW    = dY @ cols^T                   (K, C*R*S)
        dcols = W^T @ dY                      (C*R*S, N*Ho*Wo)
        dx    = col2im(dcols)                 every column entry added back onto its pixel
        dbias = dY summed over n, ho, wo

    with dY = grad_output laid out like the forward product: (K, N*Ho*Wo).
    """
    x, weight, cols = cache["x"], cache["weight"], cache["cols"]
    out_channels = weight.shape[0]
    grad_matrix = grad_output.transpose(1, 0, 2, 3).reshape(out_channels, -1)
    grad_weight = (grad_matrix @ cols.T).reshape(weight.shape)
    grad_cols = weight.reshape(out_channels, -1).T @ grad_matrix
    grad_x = col2im(grad_cols, x.shape, weight.shape[2:], cache["stride"], cache["padding"],
                    cache["dilation"])
    grad_bias = grad_output.sum(axis=(0, 2, 3))
    return grad_x, grad_weight, grad_bias


def batch_norm_backward(grad_output, cache):
    """With M = N*H*W values per channel, x_hat = (x - mean) * inv_std and y = x_hat * weight + bias:

        dbias   = sum(dy)
        dweight = sum(dy * x_hat)
        dx_hat  = dy * weight
        dx      = inv_std / M * (M * dx_hat - sum(dx_hat) - x_hat * sum(dx_hat * x_hat))

    (sums per channel).  The two subtracted terms are the paths through the batch
    mean and the batch variance: every x moves the statistics that normalize all others.
    """
    x_hat, inv_std, weight = cache["x_hat"], cache["inv_std"], cache["weight"]
    channel_axes = (0, 2, 3)   # the sums run over N, H and W
    count = x_hat.size // x_hat.shape[1]
    per_channel = (1, -1, 1, 1)
    grad_bias = grad_output.sum(axis=channel_axes)
    grad_weight = (grad_output * x_hat).sum(axis=channel_axes)
    grad_x_hat = grad_output * weight.reshape(per_channel)
    grad_x = inv_std.reshape(per_channel) / count * (
        count * grad_x_hat
        - grad_x_hat.sum(axis=channel_axes, keepdims=True)
        - x_hat * (grad_x_hat * x_hat).sum(axis=channel_axes, keepdims=True))
    return grad_x, grad_weight, grad_bias


SOLUTIONS = {"relu": relu_backward, "max_pool2d": max_pool2d_backward,
             "conv2d": conv2d_backward, "batch_norm": batch_norm_backward}
