"""``ReLU``, the rectifier between the layers of a ResNet."""
from .. import functional as F
from .module import Module


class ReLU(Module):
    """Rectified linear unit, elementwise: y = max(x, 0).  Any shape -> same shape."""

    def forward(self, input):
        return F.relu(input)
