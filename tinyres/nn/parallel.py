"""``DistributedDataParallel``: one model per rank, gradients averaged after every backward.

    import tinyres.distributed as dist
    dist.init()
    model = DistributedDataParallel(resnet20())      # rank 0's weights on every rank
    loss = F.cross_entropy(model(images_of_this_rank), labels_of_this_rank)
    loss.backward()                                  # .grad is the average over the ranks
    optimizer.step()                                 # the same step on every rank

Each rank computes the mean loss of its own B/N images.  The mean over the ranks of
their gradients is then the gradient of the mean loss over all B images, so every rank
takes the step that one process with the whole batch would take.  The average is taken
by one ``Allreduce`` per bucket of gradients (a few MB each, flattened into one buffer),
not one per tensor: each collective costs a latency, and a ResNet has hundreds of tensors.
The reduction runs when the backward pass has finished (``autograd.queue_callback``), so
the training script needs no extra call.
"""
import numpy as np

from .. import distributed as dist
from ..autograd import Function, is_grad_enabled, queue_callback
from ..backend import xp_of
from ..tensor import Tensor
from .module import Module

DEFAULT_BUCKET_MB = 4


class _AverageGradientsAfterBackward(Function):
    """Identity on the model's output whose backward queues the gradient average.

    The output's backward runs first in the backward pass, before any parameter has its
    gradient; queuing the average there makes it run once, after the last one.
    """

    @staticmethod
    def forward(ctx, output, ddp):
        ctx.ddp = ddp
        return output

    @staticmethod
    def backward(ctx, grad_output):
        queue_callback(ctx.ddp.average_gradients)
        return grad_output


def plan_buckets(parameters, bucket_mb=DEFAULT_BUCKET_MB):
    """Group ``parameters`` into buckets of at most ``bucket_mb`` MB, one dtype per bucket.

    In reverse order, as their gradients become ready in the backward pass.  A tensor
    larger than a bucket gets a bucket of its own.
    """
    limit = bucket_mb * 2 ** 20
    buckets, current, size, dtype = [], [], 0, None
    for parameter in reversed(list(parameters)):
        nbytes = parameter.data.nbytes
        if current and (size + nbytes > limit or parameter.dtype != dtype):
            buckets.append(current)
            current, size = [], 0
        current.append(parameter)
        size, dtype = size + nbytes, parameter.dtype
    if current:
        buckets.append(current)
    return buckets


class DistributedDataParallel(Module):
    """Data parallelism over MPI ranks, as ``torch.nn.parallel.DistributedDataParallel``.

    module: the network, the same on every rank.  On wrapping, rank 0's parameters and
    buffers are broadcast.  While training, the buffers are broadcast from rank 0 before
    each forward (``broadcast_buffers``), as PyTorch does, and after ``backward()`` every
    parameter's ``.grad`` is the average over the ranks.  The wrapped network is
    ``.module``; its state_dict keys carry the prefix ``module.``, as PyTorch's.
    """

    def __init__(self, module, bucket_mb=DEFAULT_BUCKET_MB, broadcast_buffers=True):
        super().__init__()
        if not isinstance(module, Module):
            raise TypeError(f"DistributedDataParallel: expected a tinyres Module, got "
                            f"{type(module).__name__}")
        if not bucket_mb > 0:
            raise ValueError(f"DistributedDataParallel: bucket_mb must be > 0, got {bucket_mb}")
        dist.init()
        self.module = module
        self.broadcast_buffers = bool(broadcast_buffers)
        object.__setattr__(self, "buckets", plan_buckets(module.parameters(), bucket_mb))
        for parameter in module.parameters():
            dist.broadcast(parameter.data, root=0)
        self._broadcast_buffers()

    def _broadcast_buffers(self):
        for _, buffer in self.module.named_buffers():
            if buffer is not None:
                dist.broadcast(buffer, root=0)

    def forward(self, *inputs, **kwargs):
        if self.training and self.broadcast_buffers:
            self._broadcast_buffers()
        output = self.module(*inputs, **kwargs)
        if self.training and is_grad_enabled() and getattr(output, "requires_grad", False):
            output = _AverageGradientsAfterBackward.apply(output, ddp=self)
        return output

    def average_gradients(self):
        """Replace each parameter's ``.grad`` by its average over the ranks, bucket by bucket.

        A parameter without a gradient on this rank contributes zeros.
        """
        if dist.world_size() == 1:
            return
        for bucket in self.buckets:
            xp = xp_of(bucket[0].data)
            flat = xp.concatenate([
                (parameter.grad.data if parameter.grad is not None
                 else xp.zeros_like(parameter.data)).ravel() for parameter in bucket])
            dist.all_reduce(flat, op="mean")
            offset = 0
            for parameter in bucket:
                size = parameter.data.size
                parameter.grad = Tensor(flat[offset:offset + size].reshape(parameter.shape).copy())
                offset += size

    def extra_repr(self):
        sizes = [sum(int(np.prod(p.shape)) for p in bucket) for bucket in self.buckets]
        return f"world_size={dist.world_size()}, buckets={len(self.buckets)} ({sizes} numbers)"


def unwrap(model):
    """The network a DistributedDataParallel wraps (``model.module``), else ``model`` itself.

    Checkpoints hold the plain network's state, so they load with or without the wrapper
    and with any number of ranks.
    """
    return model.module if isinstance(model, DistributedDataParallel) else model
