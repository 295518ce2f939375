"""The CIFAR-10 ResNets and plain networks of He et al. (2016), section 4.2.

    conv1 3x3 (16) -> bn1 -> relu                   32x32
    layer1: n blocks, 16 channels                   32x32
    layer2: n blocks, 32 channels, first stride 2   16x16
    layer3: n blocks, 64 channels, first stride 2    8x8
    avgpool (global) -> flatten -> fc (64 -> 10)

With basic blocks there are 6n + 2 weighted layers: n = 3, 5, 7, 9, 18, 200 give
ResNet-20/32/44/56/110/1202.  The paper uses shortcut option A (zero padding), so a
ResNet adds no parameters over the plain network of the same depth.  With bottleneck
blocks (3 layers each, 4x wider outputs) there are 9n + 2 layers, e.g. ResNet-164.

Layer names follow the ImageNet ResNets (``conv1``, ``layer1.0.conv1``, ``fc``).
"""
from .. import nn
from .blocks import (BasicBlock, Bottleneck, PreActBasicBlock, PreActBottleneck,
                     check_shortcut_option, initialize_resnet, make_shortcut)

BLOCKS = {"basic": BasicBlock, "bottleneck": Bottleneck, "preact_basic": PreActBasicBlock,
          "preact_bottleneck": PreActBottleneck}


class CifarResNet(nn.Module):
    """A three-stage ResNet for small images: x (N, in_channels, H, W) -> logits (N, num_classes).

    block: a block class; blocks_per_stage: n; width: channels of the first stage
    (16; the stages have width, 2*width, 4*width planes); shortcut: "A", "B" or "C"
    (see :func:`tinyres.models.blocks.make_shortcut`); plain: no shortcuts at all.
    Pre-activation blocks (``preactivation``) get no BN/ReLU after conv1 (the first
    block applies them) and a final BN + ReLU (``final_bn``) instead.
    """

    def __init__(self, block, blocks_per_stage, num_classes=10, in_channels=3, width=16,
                 shortcut="A", plain=False):
        super().__init__()
        check_shortcut_option(shortcut, "CifarResNet")
        self.preactivation = block.preactivation
        self.shortcut_option = None if plain else shortcut   # None: a plain network
        self.in_planes = width
        self.conv1 = nn.Conv2d(in_channels, width, kernel_size=3, padding=1, bias=False)
        if not self.preactivation:
            self.bn1 = nn.BatchNorm2d(width)
        self.relu = nn.ReLU()
        self.layer1 = self._make_layer(block, width, blocks_per_stage)
        self.layer2 = self._make_layer(block, 2 * width, blocks_per_stage, stride=2)
        self.layer3 = self._make_layer(block, 4 * width, blocks_per_stage, stride=2)
        if self.preactivation:
            self.final_bn = nn.BatchNorm2d(self.in_planes)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.flatten = nn.Flatten()
        self.fc = nn.Linear(self.in_planes, num_classes)
        initialize_resnet(self)

    def _make_layer(self, block, planes, blocks, stride=1):
        """One stage: ``blocks`` blocks of ``planes``; the first changes stride and width.

        The network builds every block's shortcut (option A, B or C, see
        :func:`tinyres.models.blocks.make_shortcut`; None in a plain network) and hands it over.
        """
        stage = []
        for _ in range(blocks):
            out_planes = planes * block.expansion
            shortcut = make_shortcut(self.shortcut_option, self.in_planes, out_planes, stride)
            stage.append(block(self.in_planes, planes, stride, shortcut=shortcut))
            self.in_planes, stride = out_planes, 1
        return nn.Sequential(*stage)

    def forward_features(self, x):
        """The convolutional trunk: (N, in_channels, H, W) -> (N, 4 * width * expansion, H/4, W/4)."""
        x = self.conv1(x)
        if not self.preactivation:
            x = self.relu(self.bn1(x))
        x = self.layer3(self.layer2(self.layer1(x)))
        if self.preactivation:
            x = self.relu(self.final_bn(x))
        return x

    def forward(self, x):
        return self.fc(self.flatten(self.avgpool(self.forward_features(x))))


def cifar_resnet(depth, num_classes=10, in_channels=3, width=16, plain=False, shortcut="A",
                 block="basic"):
    """Build the CIFAR network of a given depth, e.g. ``cifar_resnet(8, width=4)`` for a tiny test net.

    depth = 6n + 2 for basic blocks, 9n + 2 for bottleneck blocks (``block`` is
    "basic", "bottleneck", "preact_basic", "preact_bottleneck" or a block class).
    """
    block_class = BLOCKS.get(block, block) if isinstance(block, str) else block
    if not isinstance(block_class, type) or not hasattr(block_class, "expansion"):
        raise ValueError(f"cifar_resnet: block must be one of {sorted(BLOCKS)} or a block class, "
                         f"got {block!r}")
    layers_per_block = 2 if block_class.expansion == 1 else 3
    step = 3 * layers_per_block
    if not isinstance(depth, int) or depth < step + 2 or (depth - 2) % step:
        valid = ", ".join(str(step * n + 2) for n in range(1, 5))
        raise ValueError(f"cifar_resnet: depth must be {step}n + 2 with {block_class.__name__} "
                         f"({layers_per_block} layers per block, 3 stages, plus conv1 and fc), "
                         f"e.g. {valid}, ...; got {depth!r}")
    return CifarResNet(block_class, (depth - 2) // step, num_classes, in_channels, width,
                       shortcut=shortcut, plain=plain)


def resnet20(num_classes=10, in_channels=3, shortcut="A"):
    """ResNet-20 (n = 3): 269,722 parameters with option A, about 41 MMACs at 32x32."""
    return cifar_resnet(20, num_classes, in_channels, shortcut=shortcut)


def resnet32(num_classes=10, in_channels=3, shortcut="A"):
    """ResNet-32 (n = 5): 464,154 parameters with option A."""
    return cifar_resnet(32, num_classes, in_channels, shortcut=shortcut)


def resnet44(num_classes=10, in_channels=3, shortcut="A"):
    """ResNet-44 (n = 7): 658,586 parameters with option A."""
    return cifar_resnet(44, num_classes, in_channels, shortcut=shortcut)


def resnet56(num_classes=10, in_channels=3, shortcut="A"):
    """ResNet-56 (n = 9): 853,018 parameters with option A."""
    return cifar_resnet(56, num_classes, in_channels, shortcut=shortcut)


def resnet110(num_classes=10, in_channels=3, shortcut="A"):
    """ResNet-110 (n = 18): 1,727,962 parameters with option A."""
    return cifar_resnet(110, num_classes, in_channels, shortcut=shortcut)


def resnet1202(num_classes=10, in_channels=3, shortcut="A"):
    """ResNet-1202 (n = 200): 19,421,274 parameters with option A."""
    return cifar_resnet(1202, num_classes, in_channels, shortcut=shortcut)


def plain20(num_classes=10, in_channels=3):
    """Plain-20: ResNet-20 without shortcuts (same parameters, 269,722)."""
    return cifar_resnet(20, num_classes, in_channels, plain=True)


def plain32(num_classes=10, in_channels=3):
    """Plain-32: ResNet-32 without shortcuts."""
    return cifar_resnet(32, num_classes, in_channels, plain=True)


def plain44(num_classes=10, in_channels=3):
    """Plain-44: ResNet-44 without shortcuts."""
    return cifar_resnet(44, num_classes, in_channels, plain=True)


def plain56(num_classes=10, in_channels=3):
    """Plain-56: ResNet-56 without shortcuts."""
    return cifar_resnet(56, num_classes, in_channels, plain=True)


def plain110(num_classes=10, in_channels=3):
    """Plain-110: ResNet-110 without shortcuts."""
    return cifar_resnet(110, num_classes, in_channels, plain=True)
