"""The fully connected layer."""
from .checks import check_same_dtype, check_tensor


def linear(input, weight, bias=None):
    """Affine map, as ``torch.nn.functional.linear``: y = x W^T + b.

    input: (N, in_features), weight: (out_features, in_features), bias: (out_features,) -> (N, out_features)
    """
    op = "linear"
    check_tensor(op, "input", input, ndim=2)
    check_tensor(op, "weight", weight, ndim=2)
    check_same_dtype(op, input=input, weight=weight, bias=bias)
    if input.shape[1] != weight.shape[1]:
        raise ValueError(f"{op}: input has {input.shape[1]} features (shape {input.shape}) but weight "
                         f"{weight.shape} expects {weight.shape[1]} (weight is (out_features, in_features))")
    out = input @ weight.T
    if bias is not None:
        if check_tensor(op, "bias", bias, ndim=1).shape[0] != weight.shape[0]:
            raise ValueError(f"{op}: bias has shape {bias.shape}, expected ({weight.shape[0]},)")
        out = out + bias
    return out
