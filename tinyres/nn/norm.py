"""``BatchNorm2d``: batch normalization with learned scale and shift and running statistics."""
import numbers

import numpy as np

from .. import functional as F
from ..backend import default_device, to_device
from . import init
from ..functional.checks import positive_int
from .module import Module
from .parameter import empty_parameter


class BatchNorm2d(Module):
    """Batch normalization over (N, H, W) per channel, as ``torch.nn.BatchNorm2d``::

        training:  y = (x - mean_B) / sqrt(var_B + eps) * weight + bias, and
                   running <- (1 - momentum) * running + momentum * batch statistic
        eval:      y = (x - running_mean) / sqrt(running_var + eps) * weight + bias

    Parameters weight (C,) = 1 and bias (C,) = 0 at the start (when ``affine``).
    Buffers running_mean (C,) = 0, running_var (C,) = 1, num_batches_tracked (int64, 0-d).
    ``momentum=None`` uses the cumulative average: momentum = 1 / num_batches_tracked.
    input (N, C, H, W) -> same shape.
    """

    def __init__(self, num_features, eps=1e-5, momentum=0.1, affine=True, track_running_stats=True):
        super().__init__()
        self.num_features = positive_int("BatchNorm2d", "num_features", num_features)
        if not isinstance(eps, numbers.Real) or eps <= 0:
            raise ValueError(f"BatchNorm2d: eps must be a positive number, got {eps!r}")
        if momentum is not None and not (isinstance(momentum, numbers.Real) and 0 <= momentum <= 1):
            raise ValueError(f"BatchNorm2d: momentum must be in [0, 1] or None, got {momentum!r}")
        self.eps, self.momentum = float(eps), momentum
        self.affine, self.track_running_stats = bool(affine), bool(track_running_stats)
        if self.affine:
            self.weight = init.ones_(empty_parameter((self.num_features,)))
            self.bias = init.zeros_(empty_parameter((self.num_features,)))
        else:
            self.register_parameter("weight", None)
            self.register_parameter("bias", None)
        if self.track_running_stats:
            device = default_device()
            self.register_buffer("running_mean", to_device(np.zeros(self.num_features, np.float32), device))
            self.register_buffer("running_var", to_device(np.ones(self.num_features, np.float32), device))
            self.register_buffer("num_batches_tracked", to_device(np.array(0, dtype=np.int64), device))
        else:
            for name in ("running_mean", "running_var", "num_batches_tracked"):
                self.register_buffer(name, None)

    def reset_running_stats(self):
        """Running mean 0, running variance 1, no batches seen."""
        if self.track_running_stats:
            self.running_mean[...] = 0
            self.running_var[...] = 1
            self.num_batches_tracked[...] = 0

    def forward(self, input):
        if getattr(input, "ndim", None) != 4 or input.shape[1] != self.num_features:
            raise ValueError(f"{self!r}: expected input of shape (N, {self.num_features}, H, W), "
                             f"got {getattr(input, 'shape', type(input).__name__)}")
        # batch statistics while training, or always when there are no running ones
        use_batch_statistics = self.training or not self.track_running_stats
        update = self.training and self.track_running_stats
        momentum = self.momentum
        if update and momentum is None:
            momentum = 1.0 / (int(self.num_batches_tracked) + 1)
        output = F.batch_norm(input, self.running_mean, self.running_var, self.weight, self.bias,
                              training=use_batch_statistics, momentum=momentum or 0.0, eps=self.eps)
        if update:
            self.num_batches_tracked += 1  # in place: the 0-d array stays the registered buffer
        return output

    def extra_repr(self):
        return (f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, affine={self.affine}, "
                f"track_running_stats={self.track_running_stats}")


class SyncBatchNorm(BatchNorm2d):
    """``BatchNorm2d`` whose training statistics cover every MPI rank, as ``torch.nn.SyncBatchNorm``.

    While training with more than one rank, each channel is normalized with the mean and
    variance of the whole batch spread over the ranks (one Allreduce of the sum and the
    sum of squares forward, one of the two gradient sums backward; see
    :mod:`tinyres.functional.sync_batch_norm`), and the running statistics are the same on
    every rank.  With one rank, or in evaluation, it is ``BatchNorm2d``.  Same parameters,
    buffers and state_dict keys.  input (N, C, H, W) -> same shape.
    """

    def forward(self, input):
        from .. import distributed as dist
        from ..functional.sync_batch_norm import sync_batch_norm

        if not self.training or dist.world_size() == 1:
            return super().forward(input)
        if getattr(input, "ndim", None) != 4 or input.shape[1] != self.num_features:
            raise ValueError(f"{self!r}: expected input of shape (N, {self.num_features}, H, W), "
                             f"got {getattr(input, 'shape', type(input).__name__)}")
        momentum = self.momentum
        if self.track_running_stats and momentum is None:
            momentum = 1.0 / (int(self.num_batches_tracked) + 1)
        output = sync_batch_norm(input, self.running_mean, self.running_var, self.weight,
                                 self.bias, momentum=momentum or 0.0, eps=self.eps)
        if self.track_running_stats:
            self.num_batches_tracked += 1
        return output

    @classmethod
    def convert_sync_batchnorm(cls, module):
        """``module`` with every ``BatchNorm2d`` replaced by a SyncBatchNorm holding its state.

        The new layers take over the parameters and buffers themselves (not copies), so
        the state_dict keys and values are unchanged.  Returns the converted module
        (a new object only when ``module`` itself is a BatchNorm2d).
        """
        if isinstance(module, BatchNorm2d) and not isinstance(module, cls):
            converted = cls.__new__(cls)
            converted.__dict__.update(module.__dict__)   # parameters, buffers, settings, mode
            return converted
        for name, child in list(module._modules.items()):
            if child is not None:
                module._modules[name] = cls.convert_sync_batchnorm(child)
        return module
