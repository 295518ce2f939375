"""Optimizers and learning-rate schedules, named and behaving like ``torch.optim``.

    optimizer = tr.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-4)
    scheduler = tr.optim.lr_scheduler.MultiStepLR(optimizer, milestones=[32000, 48000])
"""
from . import lr_scheduler
from .adam import Adam
from .optimizer import Optimizer
from .sgd import SGD

__all__ = ["Adam", "Optimizer", "SGD", "lr_scheduler"]
