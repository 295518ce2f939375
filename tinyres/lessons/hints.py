"""Hints for the typical bugs of the assignment, recognised from the shape of a wrong answer.

Each hint is ``hint(cache, returned, expected) -> sentence or None``: ``cache`` is what
the exercise's forward saved, ``returned`` and ``expected`` map a gradient's name
(``"dx"``) to the student's array and the right one.  The grader calls the hints of a
failing case in order and prints the first sentence it gets right under that case.
They look only at where and how the answer is wrong, never at how it was computed, and
none of them contains the answer.
"""
import numpy as np

CLOSE = dict(rtol=1e-7, atol=1e-9)   # "this gradient is right", as the grader's tolerance


def _right(returned, expected, name):
    return np.allclose(returned[name], expected[name], **CLOSE)


def _wrong_mask(returned, expected, name):
    return ~np.isclose(returned[name], expected[name], **CLOSE)


def constant_factor(cache, returned, expected):
    """Every wrong gradient is the right one times one number: a missing or extra factor."""
    for name, value in returned.items():
        right = expected[name]
        if _right(returned, expected, name) or not np.any(right):
            continue
        scale = np.vdot(value, right) / np.vdot(right, right)
        if abs(scale - 1) > 1e-6 and np.allclose(value, scale * right, **CLOSE):
            if np.isclose(scale, -1):
                return f"{name} has the right size but the wrong sign everywhere"
            return (f"{name} is the right answer times {scale:.4g} everywhere: a factor "
                    "is missing or extra")
    return None


# --------------------------------------------------------------------------- relu
def relu_mask(cache, returned, expected):
    """Where the ReLU gradient is wrong says which side of the mask is."""
    wrong = _wrong_mask(returned, expected, "dx")
    negative = cache["x"] <= 0
    if wrong.any() and (wrong <= negative).all():
        return ("dx is wrong only where x < 0: the gradient must be blocked there "
                "(multiply grad_output by the mask x > 0)")
    if wrong.any() and (wrong <= ~negative).all():
        return "dx is wrong only where x > 0: there it is grad_output, unchanged"
    return None


# --------------------------------------------------------------------------- max pooling
def _wins(cache):
    """How many windows each (padded) pixel won: the count behind the overlap bug."""
    x, argmax = cache["x"], cache["argmax"]
    (_, kernel_w), (stride_h, stride_w), (pad_h, pad_w) = (
        cache["kernel_size"], cache["stride"], cache["padding"])
    n, c, ho, wo = np.indices(argmax.shape)
    counts = np.zeros((x.shape[0], x.shape[1], x.shape[2] + 2 * pad_h, x.shape[3] + 2 * pad_w))
    np.add.at(counts, (n, c, ho * stride_h + argmax // kernel_w, wo * stride_w + argmax % kernel_w), 1)
    return counts[:, :, pad_h:pad_h + x.shape[2], pad_w:pad_w + x.shape[3]]


def pool_repeated_winners(cache, returned, expected):
    """Wrong only at pixels that won more than one window: a repeated index was not summed."""
    wrong = _wrong_mask(returned, expected, "dx")
    if wrong.any() and (wrong <= (_wins(cache) > 1)).all():
        return ("dx is wrong only at pixels that won more than one window: their gradient is "
                "the sum over those windows, but a[idx] += v adds once per repeated index; "
                "use np.add.at")
    return None


def pool_padding_offset(cache, returned, expected):
    """The right gradient, shifted by the padding: the crop at the end kept the wrong rows."""
    pad_h, pad_w = cache["padding"]
    if not (pad_h or pad_w):
        return None
    height, width = expected["dx"].shape[2:]
    padded = np.zeros(expected["dx"].shape[:2] + (height + 2 * pad_h, width + 2 * pad_w))
    padded[:, :, pad_h:pad_h + height, pad_w:pad_w + width] = expected["dx"]
    if np.allclose(returned["dx"], padded[:, :, :height, :width], **CLOSE):
        return ("dx is the right gradient shifted by the padding: the padded gradient must be "
                f"cropped to rows {pad_h}:{pad_h}+H and columns {pad_w}:{pad_w}+W")
    return None


# --------------------------------------------------------------------------- convolution
def conv_bias(cache, returned, expected):
    """dbias alone wrong: a sum over the wrong axes."""
    if not _right(returned, expected, "dbias"):
        return "dbias is grad_output summed over everything but the channel axis: axes (0, 2, 3)"
    return None


def conv_axis_order(cache, returned, expected):
    """dbias right, dweight wrong with a batch of several images: the (K, N, Ho, Wo) transpose."""
    if _right(returned, expected, "dbias") and not _right(returned, expected, "dweight"):
        hint = ("dbias is right but dweight is wrong: lay grad_output out like the forward "
                "product, (K, N*Ho*Wo), by moving the channel axis first (transpose to "
                "(K, N, Ho, Wo)) before the reshape")
        if cache["x"].shape[0] == 1:
            hint += "; with a batch of one the missing transpose does not show, so look elsewhere"
        return hint
    return None


def conv_col2im_settings(cache, returned, expected):
    """dweight and dbias right, dx wrong: the way back to the image."""
    if (_right(returned, expected, "dweight") and _right(returned, expected, "dbias")
            and not _right(returned, expected, "dx")):
        return ("dweight and dbias are right, dx is wrong: dx = col2im(weight^T @ dY, x.shape, "
                "(R, S), stride, padding, dilation), with the cache's stride, padding and dilation")
    return None


# --------------------------------------------------------------------------- batch norm
CHANNEL_AXES = (0, 2, 3)


def batch_norm_paths(cache, returned, expected):
    """dweight and dbias right, dx wrong: which path through the batch statistics is missing.

    The true dx sums to zero over each channel (the path through the mean) and is
    orthogonal to x_hat in each channel (the path through the variance).
    """
    if not (_right(returned, expected, "dweight") and _right(returned, expected, "dbias")):
        return None
    grad_x, x_hat = returned["dx"], cache["x_hat"]
    scale = np.abs(expected["dx"]).max() * x_hat[:, 0].size + 1e-300
    if np.abs(grad_x.sum(axis=CHANNEL_AXES)).max() > 1e-7 * scale:
        return ("dweight and dbias are right, but dx does not sum to zero over each channel: "
                "the path through the batch mean is missing, or its sum does not run over "
                "axes (0, 2, 3)")
    if np.abs((grad_x * x_hat).sum(axis=CHANNEL_AXES)).max() > 1e-7 * scale:
        return ("dweight and dbias are right, but the path through the batch variance is "
                "missing from dx (the term x_hat * sum(dx_hat * x_hat))")
    return "dweight and dbias are right, dx is wrong: compare it term by term with lesson 3"


def batch_norm_parameters(cache, returned, expected):
    """dweight or dbias wrong: per-channel sums over the wrong axes, or x instead of x_hat."""
    for name, formula in (("dbias", "sum(grad_output)"), ("dweight", "sum(grad_output * x_hat)")):
        if not _right(returned, expected, name):
            return f"{name} is {formula} per channel, over axes (0, 2, 3)"
    return None


HINTS = {
    "relu": (constant_factor, relu_mask),
    "max_pool2d": (constant_factor, pool_repeated_winners, pool_padding_offset),
    "conv2d": (constant_factor, conv_bias, conv_axis_order, conv_col2im_settings),
    "batch_norm": (constant_factor, batch_norm_parameters, batch_norm_paths),
}
