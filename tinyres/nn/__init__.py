"""Layers and networks as objects that own their parameters, mirroring ``torch.nn``.

    import tinyres.nn as nn
    layer = nn.Conv2d(3, 64, kernel_size=3, padding=1, bias=False)
    y = layer(x)                       # calls forward
    layer.state_dict()                 # {'weight': array of shape (64, 3, 3, 3)}
"""
from . import init, parallel
from .activation import ReLU
from .container import Sequential
from .conv import Conv2d
from .linear import Flatten, Identity, Linear
from .module import IncompatibleKeys, Module, RemovableHandle
from .norm import BatchNorm2d, SyncBatchNorm
from .parameter import Parameter
from .pooling import AdaptiveAvgPool2d, AvgPool2d, MaxPool2d
from .state import StateDictError

__all__ = ["AdaptiveAvgPool2d", "AvgPool2d", "BatchNorm2d", "Conv2d", "Flatten", "Identity",
           "IncompatibleKeys", "Linear", "MaxPool2d", "Module", "Parameter", "ReLU",
           "RemovableHandle", "Sequential", "StateDictError", "SyncBatchNorm", "init", "parallel"]
