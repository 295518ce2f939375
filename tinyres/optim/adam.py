"""Adam (Kingma & Ba, 2015), exactly as ``torch.optim.Adam``.

For each parameter p with gradient g, at step t = 1, 2, ...:

    g   <- g + lambda * p                          (L2 weight decay, added to the gradient)
    m_t <- beta1 * m_{t-1} + (1 - beta1) * g       (first moment: a running mean of g)
    v_t <- beta2 * v_{t-1} + (1 - beta2) * g^2     (second moment: a running mean of g^2)
    p   <- p - lr / (1 - beta1^t) * m_t / (sqrt(v_t) / sqrt(1 - beta2^t) + eps)

m and v start at zero, so early on they are biased towards zero; dividing by
(1 - beta^t) removes that bias.  Each coordinate gets its own step size, about lr
wherever the gradient's sign is consistent, whatever its scale.
"""
import math

from ..backend import xp_of
from .optimizer import Optimizer


class Adam(Optimizer):
    """Adam(params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0).

    ``optimizer.state[p]`` holds ``"step"`` (an int), ``"exp_avg"`` (m) and
    ``"exp_avg_sq"`` (v), arrays of p's shape and dtype.
    """

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0):
        if not lr >= 0.0:
            raise ValueError(f"Adam: the learning rate must be >= 0, got lr={lr}")
        if not eps >= 0.0:
            raise ValueError(f"Adam: eps must be >= 0, got {eps}")
        if len(betas) != 2 or not all(0.0 <= beta < 1.0 for beta in betas):
            raise ValueError(f"Adam: betas must be two numbers in [0, 1), got {betas}")
        if not weight_decay >= 0.0:
            raise ValueError(f"Adam: weight_decay must be >= 0, got {weight_decay}")
        defaults = dict(lr=lr, betas=tuple(betas), eps=eps, weight_decay=weight_decay)
        super().__init__(params, defaults)

    def step(self):
        """Apply one update to every parameter that has a gradient."""
        for group in self.param_groups:
            lr, (beta1, beta2) = group["lr"], group["betas"]
            eps, weight_decay = group["eps"], group["weight_decay"]
            for param in group["params"]:
                if param.grad is None:
                    continue
                grad = self._gradient(param, "Adam.step")
                xp = xp_of(param.data)
                state = self.state.setdefault(param, {})
                if not state:
                    state["step"] = 0
                    state["exp_avg"] = xp.zeros_like(param.data)
                    state["exp_avg_sq"] = xp.zeros_like(param.data)
                state["step"] += 1
                step = state["step"]
                if weight_decay != 0:
                    grad = grad + weight_decay * param.data
                exp_avg, exp_avg_sq = state["exp_avg"], state["exp_avg_sq"]
                # m + (1 - beta1) (g - m) is beta1 m + (1 - beta1) g, written as PyTorch's lerp.
                exp_avg += (1 - beta1) * (grad - exp_avg)
                exp_avg_sq *= beta2
                exp_avg_sq += (1 - beta2) * grad * grad
                step_size = lr / (1 - beta1 ** step)
                denominator = xp.sqrt(exp_avg_sq) / math.sqrt(1 - beta2 ** step) + eps
                param.data -= step_size * (exp_avg / denominator)
