"""DataLoader: cut a dataset into (images, labels) NumPy batches, reproducibly.

Randomness comes from one seed. Epoch ``e`` uses the generator seeded with
``(seed, e)``, so the shuffle order differs from epoch to epoch yet is the same on
every run; the shuffle and the augmentation draw from two independent child streams
of it, so adding a transform does not change which images land in which batch.

Data-parallel training shards every batch: with ``world_size`` N, rank r takes its
contiguous 1/N of each batch of the epoch's order.  Every rank draws the same seeded
permutation, so the N shards of a batch are disjoint and together are the batch one
process would take (as PyTorch's ``DistributedSampler`` with ``set_epoch``, but per batch).
"""
import math

import numpy as np


def last_batch_too_small(num_samples, batch_size, world_size):
    """True when the last, partial batch holds fewer samples than there are ranks to share it."""
    return world_size > 1 and 0 < num_samples % batch_size < world_size


class DataLoader:
    """Iterate over ``(images (B, C, H, W), labels (B,))`` batches of a dataset.

    dataset: anything with ``images`` (N, C, H, W) and ``labels`` (N,) arrays
    (a :class:`~tinyres.data.datasets.Dataset`). Each epoch visits every sample once;
    the last batch is smaller (``N % batch_size``) unless ``drop_last`` drops it.
    transform(images, rng) is applied to each batch. Every batch is a fresh array, so
    changing it never changes the dataset.

    ``len(loader)`` is the number of batches per epoch:
    ``N // batch_size`` with drop_last, ``ceil(N / batch_size)`` without.

    rank, world_size: this rank's share of each batch (see the module docstring):
    ``batch_size`` stays the global batch, which world_size must divide; a smaller last
    batch is split as evenly as numpy.array_split splits it.
    """

    def __init__(self, dataset, batch_size, shuffle=False, seed=0, drop_last=False,
                 transform=None, rank=0, world_size=1):
        if not (hasattr(dataset, "images") and hasattr(dataset, "labels")):
            raise TypeError(
                f"DataLoader: dataset must have 'images' (N, C, H, W) and 'labels' (N,) "
                f"arrays, got {type(dataset).__name__}"
            )
        if len(dataset.images) != len(dataset.labels):
            raise ValueError(
                f"DataLoader: the dataset has {len(dataset.images)} images but "
                f"{len(dataset.labels)} labels"
            )
        if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) \
                or batch_size < 1:
            raise ValueError(f"DataLoader: batch_size must be an int >= 1, got {batch_size!r}")
        if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
            raise ValueError(f"DataLoader: seed must be an int >= 0, got {seed!r}")
        if transform is not None and not callable(transform):
            raise TypeError(
                f"DataLoader: transform must be callable as transform(images, rng), "
                f"got {transform!r}"
            )
        if isinstance(world_size, bool) or not isinstance(world_size, (int, np.integer)) \
                or world_size < 1 or not isinstance(rank, (int, np.integer)) \
                or not 0 <= rank < world_size:
            raise ValueError(f"DataLoader: need 0 <= rank < world_size, got rank {rank!r} and "
                             f"world_size {world_size!r}")
        if batch_size % world_size:
            raise ValueError(f"DataLoader: the batch of {batch_size} cannot be shared equally "
                             f"by {world_size} ranks; choose a multiple of {world_size}")
        if last_batch_too_small(len(dataset.labels), batch_size, world_size) and not drop_last:
            raise ValueError(f"DataLoader: the last batch holds {len(dataset.labels) % batch_size} "
                             f"samples, fewer than the {world_size} ranks; pass drop_last=True "
                             "or change the batch size")
        self.rank, self.world_size = int(rank), int(world_size)
        self.dataset = dataset
        self.batch_size = int(batch_size)
        self.shuffle = bool(shuffle)
        self.seed = int(seed)
        self.drop_last = bool(drop_last)
        self.transform = transform
        self.epoch = 0  # counts the iterations started; picks the epoch's random stream

    def __len__(self):
        num_samples = len(self.dataset.labels)
        if self.drop_last:
            return num_samples // self.batch_size
        return math.ceil(num_samples / self.batch_size)

    def set_epoch(self, epoch):
        """Make the next iteration use epoch ``epoch``'s order (e.g. to resume a run)."""
        self.epoch = int(epoch)

    def state_dict(self):
        """Where the loader is, as plain data: ``{"epoch", "seed", "batch_size", "shuffle",
        "drop_last", "num_samples"}``.

        The epoch alone fixes the next shuffle and augmentation; the rest lets
        :meth:`load_state_dict` check that it continues over the same data the same way.
        """
        return {"epoch": self.epoch, "seed": self.seed, "batch_size": self.batch_size,
                "shuffle": self.shuffle, "drop_last": self.drop_last,
                "num_samples": len(self.dataset.labels)}

    def load_state_dict(self, state_dict):
        """Continue from a saved :meth:`state_dict`; refuses one saved from other settings.

        Any difference (another seed, batch size or number of samples) would change
        every later batch, so it is an error rather than a silent change of the run.
        """
        current = self.state_dict()
        different = [f"{key} {state_dict.get(key)!r} (this loader has {current[key]!r})"
                     for key in current if key != "epoch" and state_dict.get(key) != current[key]]
        if different:
            raise ValueError("DataLoader.load_state_dict: the state was saved from a loader "
                             f"with {', '.join(different)}; the batches would differ")
        self.set_epoch(state_dict["epoch"])

    def __iter__(self):
        epoch_seed = np.random.SeedSequence([self.seed, self.epoch])
        self.epoch += 1
        shuffle_rng, transform_rng = (np.random.default_rng(child) for child in epoch_seed.spawn(2))
        num_samples = len(self.dataset.labels)
        if self.shuffle:
            order = shuffle_rng.permutation(num_samples)
        else:
            order = np.arange(num_samples)
        for batch_number in range(len(self)):
            indices = order[batch_number * self.batch_size:(batch_number + 1) * self.batch_size]
            if self.world_size > 1:   # this rank's contiguous share of the batch
                indices = np.array_split(indices, self.world_size)[self.rank]
            # Indexing with an array copies, so batches never alias the dataset.
            images = self.dataset.images[indices]
            labels = self.dataset.labels[indices]
            if self.transform is not None:
                images = self.transform(images, transform_rng)
            yield images, labels

    def __repr__(self):
        return (f"DataLoader(num_samples={len(self.dataset.labels)}, "
                f"batch_size={self.batch_size}, shuffle={self.shuffle}, seed={self.seed}, "
                f"drop_last={self.drop_last}, transform={self.transform!r}"
                + (f", rank={self.rank}, world_size={self.world_size})" if self.world_size > 1
                   else ")"))
