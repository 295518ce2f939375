"""Residual blocks: y = relu(F(x) + shortcut(x)) (He et al., 2016) and the pre-activation
form y = F(x) + shortcut(x) (He et al., 2016b, "Identity Mappings in Deep Residual Networks").

Names follow torchvision (``conv1``, ``bn1``, ..., ``downsample.0``, ``downsample.1``), so
the state dict of a network built from these blocks has torchvision's keys.

The shortcut, when the block changes the shape (stride > 1 or more channels):

* ``"A"`` -- zero padding: subsample, then append zero channels; no parameters;
* ``"B"`` -- a 1x1 convolution + batch norm ("projection") only where the shape
  changes, identity elsewhere (torchvision's choice);
* ``"C"`` -- a projection in every block, even where the identity would fit.

``plain=True`` drops the shortcut altogether: the "plain" networks the paper uses to
show the degradation problem.
"""
from .. import functional as F
from .. import nn

SHORTCUT_KINDS = ("A", "B", "C")


def conv3x3(in_planes, out_planes, stride=1, dilation=1):
    """3x3 convolution without bias (batch norm follows); padding = dilation keeps the size at stride 1."""
    return nn.Conv2d(in_planes, out_planes, kernel_size=3, stride=stride, padding=dilation,
                     dilation=dilation, bias=False)


def conv1x1(in_planes, out_planes, stride=1):
    """1x1 convolution without bias: mixes channels, or subsamples when stride > 1."""
    return nn.Conv2d(in_planes, out_planes, kernel_size=1, stride=stride, bias=False)


class ResidualBlock(nn.Module):
    """What every block shares: choosing, building and applying its shortcut.

    Subclasses build their layers, call ``_build_shortcut`` and combine
    ``residual`` and ``self.shortcut(x)`` in their forward.
    """

    expansion = 1
    preactivation = False

    def _build_shortcut(self, in_planes, out_planes, stride, shortcut, plain):
        name = type(self).__name__
        if shortcut not in SHORTCUT_KINDS:
            raise ValueError(f"{name}: shortcut must be one of {SHORTCUT_KINDS} (zero padding, "
                             f"projection where needed, projection everywhere), got {shortcut!r}")
        self.plain, self.stride, self.out_planes = bool(plain), stride, out_planes
        shape_changes = stride != 1 or in_planes != out_planes
        # kind: "none" (plain), "identity", "zero_pad" (A) or "projection" (B, C)
        if plain:
            self.shortcut_kind = "none"
        elif shortcut == "C" or (shortcut == "B" and shape_changes):
            self.shortcut_kind = "projection"
        elif shortcut == "A" and shape_changes:
            self.shortcut_kind = "zero_pad"
        else:
            self.shortcut_kind = "identity"
        # built after the residual branch's layers, so the key order matches torchvision's
        if self.shortcut_kind == "projection":
            self.downsample = nn.Sequential(conv1x1(in_planes, out_planes, stride),
                                            nn.BatchNorm2d(out_planes))
        else:
            self.downsample = None

    def shortcut(self, x):
        """The shortcut path of x: identity, zero padding or projection (None for a plain block)."""
        if self.shortcut_kind == "projection":
            return self.downsample(x)
        if self.shortcut_kind == "zero_pad":
            return F.zero_pad_shortcut(x, self.out_planes, self.stride)
        if self.shortcut_kind == "identity":
            return x
        return None

    def extra_repr(self):
        return f"shortcut={self.shortcut_kind!r}"


class BasicBlock(ResidualBlock):
    """Two 3x3 convolutions: y = relu(bn2(conv2(relu(bn1(conv1(x))))) + shortcut(x)).

    x: (N, in_planes, H, W) -> (N, planes, Ho, Wo), Ho = ceil(H / stride).  expansion = 1.
    """

    expansion = 1

    def __init__(self, in_planes, planes, stride=1, dilation=1, shortcut="B", plain=False):
        super().__init__()
        self.conv1 = conv3x3(in_planes, planes, stride, dilation)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU()
        self.conv2 = conv3x3(planes, planes, dilation=dilation)
        self.bn2 = nn.BatchNorm2d(planes)
        self._build_shortcut(in_planes, planes * self.expansion, stride, shortcut, plain)

    def forward(self, x):
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        if not self.plain:
            out = out + self.shortcut(x)
        return self.relu(out)


class Bottleneck(ResidualBlock):
    """1x1 (reduce) -> 3x3 -> 1x1 (expand to 4 * planes), then add the shortcut and ReLU.

    y = relu(bn3(conv3(relu(bn2(conv2(relu(bn1(conv1(x)))))))) + shortcut(x))

    x: (N, in_planes, H, W) -> (N, 4 * planes, Ho, Wo), Ho = ceil(H / stride).
    The stride sits on the 3x3 (torchvision, "ResNet v1.5"); ``stride_in_1x1=True``
    puts it on the first 1x1 as in the original paper, which skips 3/4 of the
    input pixels outright and makes the 3x3 run at the lower resolution.
    """

    expansion = 4

    def __init__(self, in_planes, planes, stride=1, dilation=1, shortcut="B", plain=False,
                 stride_in_1x1=False):
        super().__init__()
        stride_1x1, stride_3x3 = (stride, 1) if stride_in_1x1 else (1, stride)
        self.conv1 = conv1x1(in_planes, planes, stride_1x1)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = conv3x3(planes, planes, stride_3x3, dilation)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = conv1x1(planes, planes * self.expansion)
        self.bn3 = nn.BatchNorm2d(planes * self.expansion)
        self.relu = nn.ReLU()
        self._build_shortcut(in_planes, planes * self.expansion, stride, shortcut, plain)

    def forward(self, x):
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        if not self.plain:
            out = out + self.shortcut(x)
        return self.relu(out)


class PreActBasicBlock(ResidualBlock):
    """Pre-activation basic block (He et al., 2016b): BN and ReLU come before each convolution.

    y = conv2(relu(bn2(conv1(relu(bn1(x)))))) + shortcut

    Nothing follows the addition, so the identity path runs unchanged from block to
    block.  A projection or zero-padding shortcut takes the activated input relu(bn1(x)),
    an identity shortcut takes x itself.  x: (N, in_planes, H, W) -> (N, planes, Ho, Wo).
    A network of these blocks needs one last BN + ReLU before pooling.
    """

    expansion = 1
    preactivation = True

    def __init__(self, in_planes, planes, stride=1, dilation=1, shortcut="B", plain=False):
        super().__init__()
        self.bn1 = nn.BatchNorm2d(in_planes)
        self.relu = nn.ReLU()
        self.conv1 = conv3x3(in_planes, planes, stride, dilation)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv2 = conv3x3(planes, planes, dilation=dilation)
        self._build_shortcut(in_planes, planes * self.expansion, stride, shortcut, plain)

    def forward(self, x):
        activated = self.relu(self.bn1(x))
        out = self.conv1(activated)
        out = self.conv2(self.relu(self.bn2(out)))
        if self.plain:
            return out
        return out + self.shortcut(x if self.shortcut_kind == "identity" else activated)


class PreActBottleneck(ResidualBlock):
    """Pre-activation bottleneck (He et al., 2016b): BN-ReLU-1x1, BN-ReLU-3x3, BN-ReLU-1x1, add.

    y = conv3(relu(bn3(conv2(relu(bn2(conv1(relu(bn1(x))))))))) + shortcut

    x: (N, in_planes, H, W) -> (N, 4 * planes, Ho, Wo); the stride sits on the 3x3
    (or on the first 1x1 with ``stride_in_1x1=True``).
    """

    expansion = 4
    preactivation = True

    def __init__(self, in_planes, planes, stride=1, dilation=1, shortcut="B", plain=False,
                 stride_in_1x1=False):
        super().__init__()
        stride_1x1, stride_3x3 = (stride, 1) if stride_in_1x1 else (1, stride)
        self.bn1 = nn.BatchNorm2d(in_planes)
        self.relu = nn.ReLU()
        self.conv1 = conv1x1(in_planes, planes, stride_1x1)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv2 = conv3x3(planes, planes, stride_3x3, dilation)
        self.bn3 = nn.BatchNorm2d(planes)
        self.conv3 = conv1x1(planes, planes * self.expansion)
        self._build_shortcut(in_planes, planes * self.expansion, stride, shortcut, plain)

    def forward(self, x):
        activated = self.relu(self.bn1(x))
        out = self.conv1(activated)
        out = self.conv2(self.relu(self.bn2(out)))
        out = self.conv3(self.relu(self.bn3(out)))
        if self.plain:
            return out
        return out + self.shortcut(x if self.shortcut_kind == "identity" else activated)
