"""The residual networks of He et al. (2016): blocks, the ImageNet and CIFAR families, summary.

    import tinyres as tr
    model = tr.models.resnet50()                  # torchvision's layout and state_dict keys
    tr.models.summary(model, (1, 3, 224, 224))    # per-layer shapes, parameters, MACs
"""
from .blocks import (BasicBlock, Bottleneck, PreActBasicBlock, PreActBottleneck, ResidualBlock,
                     ZeroPadShortcut, conv1x1, conv3x3, make_shortcut)
from .cifar import (CifarResNet, cifar_resnet, plain20, plain32, plain44, plain56, plain110,
                    resnet20, resnet32, resnet44, resnet56, resnet110, resnet1202)
from .imagenet import ResNet, resnet18, resnet34, resnet50, resnet101, resnet152
from .summary import Summary, summary

__all__ = ["BasicBlock", "Bottleneck", "CifarResNet", "PreActBasicBlock", "PreActBottleneck",
           "ResNet", "ResidualBlock", "Summary", "ZeroPadShortcut", "cifar_resnet", "conv1x1",
           "conv3x3", "make_shortcut", "plain20", "plain32", "plain44", "plain56", "plain110",
           "resnet18", "resnet20", "resnet32", "resnet34", "resnet44", "resnet50", "resnet56",
           "resnet101", "resnet110", "resnet152", "resnet1202", "summary"]
