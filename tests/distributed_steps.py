"""Ten SGD steps of ResNet-8 in float64 on a global batch of 16, on however many ranks run this.

    python tests/distributed_steps.py OUT.npz [--no-sync-bn]               # one process
    mpiexec -n 2 python tests/distributed_steps.py OUT.npz [--no-sync-bn]  # two ranks

Every rank builds the same network and data from seed 0 and takes the contiguous
1/N of each global batch; the model is wrapped in DistributedDataParallel and, unless
``--no-sync-bn``, its batch norms are synchronized.  Rank 0 writes the final parameters
and buffers to OUT.npz.  tests/test_distributed.py compares the runs.
"""
import sys

import numpy as np

import tinyres as tr
import tinyres.distributed as dist
import tinyres.functional as F
from tinyres.models import cifar_resnet
from tinyres.nn import SyncBatchNorm
from tinyres.nn.parallel import DistributedDataParallel

GLOBAL_BATCH, STEPS, CLASSES = 16, 10, 4


def main(out_path, sync_batch_norm=True):
    rank, world_size = dist.init()
    tr.set_backend("numpy")
    np.random.seed(0)
    model = cifar_resnet(8, num_classes=CLASSES, in_channels=3, width=4).double()
    if sync_batch_norm:
        model = SyncBatchNorm.convert_sync_batchnorm(model)
    model = DistributedDataParallel(model)
    model.train()
    optimizer = tr.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-4)
    rng = np.random.default_rng(0)
    share = GLOBAL_BATCH // world_size
    for _ in range(STEPS):
        images = rng.standard_normal((GLOBAL_BATCH, 3, 8, 8))
        labels = rng.integers(0, CLASSES, GLOBAL_BATCH)
        mine = slice(rank * share, (rank + 1) * share)
        optimizer.zero_grad()
        F.cross_entropy(model(tr.tensor(images[mine])), labels[mine]).backward()
        optimizer.step()
    if rank == 0:
        np.savez(out_path, **model.module.state_dict())


if __name__ == "__main__":
    main(sys.argv[1], sync_batch_norm="--no-sync-bn" not in sys.argv[2:])
