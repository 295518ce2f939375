"""Learning-rate schedules, with ``torch.optim.lr_scheduler``'s names and values.

A scheduler owns a counter ``last_epoch`` (PyTorch's name; it counts calls to
:meth:`~LRScheduler.step`, which may be epochs *or* iterations -- the training loop
decides which, see ``tinyres.train.fit(scheduler_interval=...)``).  Each step it sets
``group["lr"]`` of every parameter group from the group's ``initial_lr``:

    MultiStepLR        lr_t = lr_0 * gamma ^ (number of milestones <= t)
    CosineAnnealingLR  lr_t = eta_min + (lr_0 - eta_min) * (1 + cos(pi * t / T_max)) / 2
    LinearWarmup       lr_t = w(t) * (the wrapped schedule's lr_t, or lr_0)

Construction already performs step 0, so ``get_last_lr()`` is valid at once and the
usual order is: train a step/epoch with the current lr, then ``scheduler.step()``.

These are closed forms of t, so a schedule is reproducible from the counter alone
(PyTorch computes some of them recursively; the values agree to round-off).
"""
import bisect
import copy
import math

from .optimizer import Optimizer


class LRScheduler:
    """Base class: subclasses define :meth:`get_lr` for the current ``last_epoch``.

    optimizer: the :class:`~tinyres.optim.Optimizer` whose groups' ``lr`` is set.
    last_epoch: -1 to start fresh; to resume at step k pass ``last_epoch=k - 1``
    (the groups must then carry ``initial_lr``, as they do after a first run).
    """

    def __init__(self, optimizer, last_epoch=-1):
        if not isinstance(optimizer, Optimizer):
            raise TypeError(f"{type(self).__name__}: expected a tinyres Optimizer, got "
                            f"{type(optimizer).__name__}")
        self.optimizer = optimizer
        for number, group in enumerate(optimizer.param_groups):
            if last_epoch == -1:
                group.setdefault("initial_lr", group["lr"])
            elif "initial_lr" not in group:
                raise KeyError(f"{type(self).__name__}: resuming at last_epoch={last_epoch} "
                               f"needs 'initial_lr' in parameter group {number}; it is set "
                               "when a scheduler is first created with last_epoch=-1")
        self.base_lrs = [group["initial_lr"] for group in optimizer.param_groups]
        self.last_epoch = last_epoch
        self.step()

    def get_lr(self):
        """The learning rate of each parameter group at step ``last_epoch``."""
        raise NotImplementedError

    def step(self):
        """Advance the schedule by one step (an epoch or an iteration) and set the new lrs."""
        self.last_epoch += 1
        lrs = [float(lr) for lr in self.get_lr()]
        for group, lr in zip(self.optimizer.param_groups, lrs):
            group["lr"] = lr
        self._last_lr = lrs

    def get_last_lr(self):
        """The learning rates set by the latest :meth:`step`, one per parameter group."""
        return list(self._last_lr)

    def state_dict(self):
        """The schedule's position and settings as plain data (lists and numbers).

        Everything but the optimizer, which is saved on its own, as in PyTorch.
        """
        return {key: copy.deepcopy(value) for key, value in self.__dict__.items()
                if key != "optimizer"}

    def load_state_dict(self, state_dict):
        """Restore what :meth:`state_dict` saved: the next :meth:`step` continues from there."""
        unknown = sorted(set(state_dict) - set(self.__dict__))
        if unknown:
            raise ValueError(f"{type(self).__name__}.load_state_dict: unexpected entries "
                             f"{unknown}; was this state saved from another kind of scheduler?")
        self.__dict__.update(copy.deepcopy(state_dict))


class MultiStepLR(LRScheduler):
    """Divide the lr by 1/gamma at each milestone: the ResNet paper's schedule.

    lr_t = lr_0 * gamma ^ bisect_right(milestones, t)

    He et al. train CIFAR-10 with lr_0 = 0.1 and divide by 10 at 32k and 48k
    iterations (stepping per iteration) -- ``MultiStepLR(opt, [32000, 48000], 0.1)``.
    """

    def __init__(self, optimizer, milestones, gamma=0.1, last_epoch=-1):
        milestones = sorted(int(milestone) for milestone in milestones)
        if any(milestone < 0 for milestone in milestones):
            raise ValueError(f"MultiStepLR: milestones must be >= 0, got {milestones}")
        self.milestones = milestones
        self.gamma = gamma
        super().__init__(optimizer, last_epoch)

    def get_lr(self):
        decays = bisect.bisect_right(self.milestones, self.last_epoch)
        return [base_lr * self.gamma ** decays for base_lr in self.base_lrs]


class CosineAnnealingLR(LRScheduler):
    """Half a cosine from lr_0 down to eta_min over T_max steps (Loshchilov & Hutter).

    lr_t = eta_min + (lr_0 - eta_min) * (1 + cos(pi * t / T_max)) / 2

    Past T_max the cosine keeps going (the lr rises again), as in PyTorch; set T_max to
    the total number of steps to end at eta_min.
    """

    def __init__(self, optimizer, T_max, eta_min=0.0, last_epoch=-1):
        if not T_max >= 1:
            raise ValueError(f"CosineAnnealingLR: T_max must be a positive number of steps, "
                             f"got {T_max}")
        self.T_max = T_max
        self.eta_min = eta_min
        super().__init__(optimizer, last_epoch)

    def get_lr(self):
        cosine = (1 + math.cos(math.pi * self.last_epoch / self.T_max)) / 2
        return [self.eta_min + (base_lr - self.eta_min) * cosine for base_lr in self.base_lrs]


class LinearWarmup(LRScheduler):
    """A warm-up of ``warmup_steps`` steps in front of (or instead of) another schedule.

    w(t) = start_factor + (1 - start_factor) * t / warmup_steps   (mode="linear")
    w(t) = start_factor                                          (mode="constant")
    for t < warmup_steps, and w(t) = 1 afterwards; the lr is w(t) times the lr that
    ``after`` (a scheduler on the same optimizer) gives at t, or w(t) * lr_0 alone.

    ``after`` keeps its own clock from step 0, so its milestones count from the start
    of training: He et al.'s ResNet-110 recipe -- lr 0.01 for the first 400
    iterations, then 0.1, divided by 10 at 32k and 48k -- is

        steps = MultiStepLR(optimizer, [32000, 48000], gamma=0.1)
        scheduler = LinearWarmup(optimizer, 400, start_factor=0.1, after=steps, mode="constant")

    Step only the outer scheduler; it steps ``after`` itself.
    """

    def __init__(self, optimizer, warmup_steps, start_factor=0.1, after=None, mode="linear",
                 last_epoch=-1):
        if mode not in ("linear", "constant"):
            raise ValueError(f"LinearWarmup: mode must be 'linear' or 'constant', got {mode!r}")
        if not 0.0 < start_factor <= 1.0:
            raise ValueError(f"LinearWarmup: start_factor must be in (0, 1], got {start_factor}")
        if not warmup_steps >= 0:
            raise ValueError(f"LinearWarmup: warmup_steps must be >= 0, got {warmup_steps}")
        if after is not None:
            if not isinstance(after, LRScheduler):
                raise TypeError(f"LinearWarmup: after must be a scheduler, got "
                                f"{type(after).__name__}")
            if after.optimizer is not optimizer:
                raise ValueError("LinearWarmup: after must schedule the same optimizer")
            if after.last_epoch != last_epoch + 1:
                raise ValueError(f"LinearWarmup: after is at step {after.last_epoch}; create "
                                 "it just before the warm-up and step only the warm-up")
        self.warmup_steps = warmup_steps
        self.start_factor = start_factor
        self.mode = mode
        self.after = after
        super().__init__(optimizer, last_epoch)

    def warmup_factor(self, step):
        """w(step): the multiplier applied to the lr at this step."""
        if step >= self.warmup_steps:
            return 1.0
        if self.mode == "constant":
            return self.start_factor
        return self.start_factor + (1.0 - self.start_factor) * step / self.warmup_steps

    def step(self):
        # The first call (from __init__) finds ``after`` already at the same step.
        if self.after is not None and not self._in_constructor():
            self.after.step()
        super().step()

    def _in_constructor(self):
        return not hasattr(self, "_last_lr")

    def state_dict(self):
        """The warm-up's state, with the wrapped scheduler's under ``"after"`` (or None)."""
        state = {key: copy.deepcopy(value) for key, value in self.__dict__.items()
                 if key not in ("optimizer", "after")}
        state["after"] = None if self.after is None else self.after.state_dict()
        return state

    def load_state_dict(self, state_dict):
        """Restore the warm-up and the scheduler it wraps."""
        state_dict = dict(state_dict)
        after = state_dict.pop("after", None)
        if (after is None) != (self.after is None):
            raise ValueError("LinearWarmup.load_state_dict: the saved warm-up "
                             f"{'wraps no' if after is None else 'wraps a'} scheduler, this one "
                             f"{'wraps none' if self.after is None else 'wraps one'}")
        super().load_state_dict(state_dict)
        if after is not None:
            self.after.load_state_dict(after)

    def get_lr(self):
        factor = self.warmup_factor(self.last_epoch)
        scheduled = self.after.get_last_lr() if self.after is not None else self.base_lrs
        return [factor * lr for lr in scheduled]
