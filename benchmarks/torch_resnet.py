"""The CIFAR ResNet of He et al. (2016) written in PyTorch, as the timing reference.

Same layers as ``tinyres.models.resnet20``: 3x3 stem with 16 channels, three stages
of basic blocks (16, 32, 64 channels), option-A shortcuts (strided subsample plus
zero channels), global average pooling, a linear classifier.
"""
import torch
import torch.nn.functional as TF
from torch import nn


class BasicBlock(nn.Module):
    def __init__(self, in_channels, out_channels, stride, shortcut=True):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.stride, self.extra_channels, self.shortcut = stride, out_channels - in_channels, shortcut

    def forward(self, x):
        out = self.bn2(self.conv2(TF.relu(self.bn1(self.conv1(x)))))
        if self.shortcut:
            identity = x[:, :, ::self.stride, ::self.stride]
            before = self.extra_channels // 2
            out = out + TF.pad(identity, (0, 0, 0, 0, before, self.extra_channels - before))
        return TF.relu(out)


class CifarResNet(nn.Module):
    def __init__(self, depth=20, num_classes=10, in_channels=3, width=16, shortcut=True):
        super().__init__()
        blocks_per_stage = (depth - 2) // 6
        self.conv1 = nn.Conv2d(in_channels, width, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        layers, channels = [], width
        for stage in range(3):
            out_channels = width * 2 ** stage
            for block in range(blocks_per_stage):
                stride = 2 if stage > 0 and block == 0 else 1
                layers.append(BasicBlock(channels, out_channels, stride, shortcut))
                channels = out_channels
        self.layers = nn.Sequential(*layers)
        self.fc = nn.Linear(channels, num_classes)
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, x):
        out = self.layers(TF.relu(self.bn1(self.conv1(x))))
        return self.fc(torch.flatten(TF.adaptive_avg_pool2d(out, 1), 1))


def torch_resnet20(num_classes=10, in_channels=3):
    """PyTorch ResNet-20 with option-A shortcuts (269,722 parameters for 3 input channels)."""
    return CifarResNet(20, num_classes, in_channels)
