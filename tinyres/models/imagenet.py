"""The ImageNet ResNets of He et al. (2016), laid out and named exactly as torchvision's.

    stem:   conv1 7x7/2 (64) -> bn1 -> relu -> maxpool 3x3/2          224 -> 56
    layer1: blocks of 64 planes,  stride 1                             56
    layer2: blocks of 128 planes, stride 2                             28
    layer3: blocks of 256 planes, stride 2                             14
    layer4: blocks of 512 planes, stride 2                              7
    head:   avgpool (global) -> flatten -> fc (planes * expansion -> num_classes)

ResNet-18/34 use :class:`BasicBlock` ([2,2,2,2] and [3,4,6,3] blocks), ResNet-50/101/152
use :class:`Bottleneck` ([3,4,6,3], [3,4,23,3], [3,8,36,3]).  Each public network is
a one-line call of the shared builder ``_resnet``.

``output_stride`` (8 or 16, as in TF-slim and DeepLab) keeps the resolution of the last
stages by replacing their stride with dilation: the same weights then see a denser grid,
which segmentation networks need.
"""
from .. import nn
from .blocks import BasicBlock, Bottleneck, check_shortcut_option, initialize_resnet, make_shortcut

STAGE_PLANES = (1, 2, 4, 8)  # planes of layer1..layer4, in units of ``width``
# which of layer2, layer3, layer4 trade their stride for dilation
DILATED_STAGES = {None: (False, False, False), 32: (False, False, False),
                  16: (False, False, True), 8: (False, True, True)}


class ResNet(nn.Module):
    """A torchvision-style ResNet for 224x224 images: x (N, in_channels, H, W) -> logits (N, num_classes).

    block: a block class (BasicBlock, Bottleneck, or a pre-activation one);
    layers: blocks per stage, e.g. [3, 4, 6, 3];  width: planes of layer1 (64);
    shortcut: "A", "B" (torchvision) or "C" (see :func:`tinyres.models.blocks.make_shortcut`);
    stride_in_1x1: the paper's bottleneck;
    output_stride: None/32, 16 or 8 (dilated last stages), or give
    replace_stride_with_dilation=[layer2, layer3, layer4] as torchvision does.
    A network of pre-activation blocks (``preactivation``) gets a final BN + ReLU
    (``final_bn``) before pooling.
    """

    def __init__(self, block, layers, num_classes=1000, in_channels=3, zero_init_residual=False,
                 output_stride=None, replace_stride_with_dilation=None, stride_in_1x1=False,
                 shortcut="B", width=64):
        super().__init__()
        if len(layers) != 4 or any(int(count) < 1 for count in layers):
            raise ValueError(f"ResNet: layers must give 4 positive block counts, got {layers!r}")
        if stride_in_1x1 and block.expansion == 1:
            raise ValueError(f"ResNet: stride_in_1x1 only applies to bottleneck blocks, "
                             f"{block.__name__} has no 1x1 convolution")
        check_shortcut_option(shortcut, "ResNet")
        if replace_stride_with_dilation is None:
            if output_stride not in DILATED_STAGES:
                raise ValueError(f"ResNet: output_stride must be None, 32, 16 or 8, got {output_stride!r}")
            replace_stride_with_dilation = DILATED_STAGES[output_stride]
        elif output_stride is not None:
            raise ValueError("ResNet: give output_stride or replace_stride_with_dilation, not both")
        if len(replace_stride_with_dilation) != 3:
            raise ValueError("ResNet: replace_stride_with_dilation needs 3 booleans (layer2, layer3, "
                             f"layer4), got {replace_stride_with_dilation!r}")
        self.preactivation = block.preactivation
        self.shortcut_option = shortcut
        # only bottlenecks take the option, so a basic block is never handed it
        self.block_options = {"stride_in_1x1": True} if stride_in_1x1 else {}
        self.in_planes, self.dilation = width, 1

        self.conv1 = nn.Conv2d(in_channels, width, kernel_size=7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.relu = nn.ReLU()
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        self.layer1 = self._make_layer(block, width, layers[0])
        for index in range(1, 4):
            layer = self._make_layer(block, width * STAGE_PLANES[index], layers[index], stride=2,
                                     dilate=replace_stride_with_dilation[index - 1])
            setattr(self, f"layer{index + 1}", layer)
        if self.preactivation:
            self.final_bn = nn.BatchNorm2d(self.in_planes)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.flatten = nn.Flatten()
        self.fc = nn.Linear(self.in_planes, num_classes)
        initialize_resnet(self, zero_init_residual)

    def _make_layer(self, block, planes, blocks, stride=1, dilate=False):
        """One stage: ``blocks`` blocks of ``planes``; the first changes stride and width.

        The network builds every block's shortcut (option A, B or C, see
        :func:`tinyres.models.blocks.make_shortcut`) and hands it over.  With ``dilate``
        the stage keeps its input resolution: the stride becomes a dilation for every
        3x3 after the first block's, as in torchvision.
        """
        dilation = self.dilation     # the first block's 3x3 keeps the previous stage's dilation
        if dilate:
            self.dilation *= stride
            stride = 1
        stage = []
        for _ in range(blocks):
            out_planes = planes * block.expansion
            shortcut = make_shortcut(self.shortcut_option, self.in_planes, out_planes, stride)
            stage.append(block(self.in_planes, planes, stride, dilation, shortcut=shortcut,
                               **self.block_options))
            self.in_planes, stride, dilation = out_planes, 1, self.dilation
        return nn.Sequential(*stage)

    def forward_features(self, x):
        """The convolutional trunk: (N, in_channels, H, W) -> (N, 512 * expansion, H/32, W/32)."""
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        if self.preactivation:
            x = self.relu(self.final_bn(x))
        return x

    def forward(self, x):
        return self.fc(self.flatten(self.avgpool(self.forward_features(x))))


def _resnet(block, layers, num_classes=1000, in_channels=3, **options):
    """The one builder behind the public networks: ``ResNet(block, layers, ...)``.

    options: those of :class:`ResNet` -- shortcut, output_stride,
    replace_stride_with_dilation, stride_in_1x1, zero_init_residual, width.
    """
    return ResNet(block, layers, num_classes, in_channels, **options)


def resnet18(num_classes=1000, in_channels=3, **options):
    """ResNet-18: BasicBlock x [2, 2, 2, 2]; 11,689,512 parameters, 1.81 GMACs at 224x224."""
    return _resnet(BasicBlock, [2, 2, 2, 2], num_classes, in_channels, **options)


def resnet34(num_classes=1000, in_channels=3, **options):
    """ResNet-34: BasicBlock x [3, 4, 6, 3]; 21,797,672 parameters, 3.66 GMACs at 224x224."""
    return _resnet(BasicBlock, [3, 4, 6, 3], num_classes, in_channels, **options)


def resnet50(num_classes=1000, in_channels=3, **options):
    """ResNet-50: Bottleneck x [3, 4, 6, 3]; 25,557,032 parameters, 4.09 GMACs at 224x224."""
    return _resnet(Bottleneck, [3, 4, 6, 3], num_classes, in_channels, **options)


def resnet101(num_classes=1000, in_channels=3, **options):
    """ResNet-101: Bottleneck x [3, 4, 23, 3]; 44,549,160 parameters, 7.80 GMACs at 224x224."""
    return _resnet(Bottleneck, [3, 4, 23, 3], num_classes, in_channels, **options)


def resnet152(num_classes=1000, in_channels=3, **options):
    """ResNet-152: Bottleneck x [3, 8, 36, 3]; 60,192,808 parameters, 11.51 GMACs at 224x224."""
    return _resnet(Bottleneck, [3, 8, 36, 3], num_classes, in_channels, **options)
