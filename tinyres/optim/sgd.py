"""Stochastic gradient descent with momentum, exactly as ``torch.optim.SGD``.

For each parameter p with gradient g, at step t (mu = momentum, tau = dampening,
lambda = weight_decay, gamma = lr):

    g   <- g + lambda * p                        (L2 weight decay, added to the gradient)
    b_1 <- g                                     (the first step copies the gradient)
    b_t <- mu * b_{t-1} + (1 - tau) * g          (later steps)
    d   <- g + mu * b_t   if nesterov   else   b_t
    p   <- p - gamma * d

This is the form of the ResNet paper's recipe (lr 0.1, momentum 0.9, weight decay
1e-4). Note that PyTorch puts the learning rate *outside* the buffer, unlike
Sutskever et al. (b <- mu b + gamma g), so changing lr mid-run takes effect at once
rather than fading in.
"""
from .optimizer import Optimizer, required


class SGD(Optimizer):
    """SGD(params, lr, momentum=0, dampening=0, weight_decay=0, nesterov=False).

    The momentum buffer of each parameter is ``optimizer.state[p]["momentum_buffer"]``,
    an array of p's shape and dtype.
    """

    def __init__(self, params, lr=required, momentum=0.0, dampening=0.0, weight_decay=0.0,
                 nesterov=False):
        if lr is not required and not lr >= 0.0:
            raise ValueError(f"SGD: the learning rate must be >= 0, got lr={lr}")
        if not momentum >= 0.0:
            raise ValueError(f"SGD: momentum must be >= 0, got {momentum}")
        if not weight_decay >= 0.0:
            raise ValueError(f"SGD: weight_decay must be >= 0, got {weight_decay}")
        if nesterov and (momentum <= 0 or dampening != 0):
            raise ValueError(f"SGD: Nesterov momentum needs momentum > 0 and dampening = 0, "
                             f"got momentum={momentum}, dampening={dampening}")
        defaults = dict(lr=lr, momentum=momentum, dampening=dampening,
                        weight_decay=weight_decay, nesterov=nesterov)
        super().__init__(params, defaults)

    def step(self):
        """Apply one update to every parameter that has a gradient."""
        for group in self.param_groups:
            lr, momentum = group["lr"], group["momentum"]
            dampening, weight_decay = group["dampening"], group["weight_decay"]
            for param in group["params"]:
                if param.grad is None:
                    continue  # a parameter unused by this batch's graph is left alone
                grad = self._gradient(param, "SGD.step")
                if weight_decay != 0:
                    grad = grad + weight_decay * param.data   # a new array: p.grad stays as computed
                if momentum != 0:
                    state = self.state.setdefault(param, {})
                    buffer = state.get("momentum_buffer")
                    if buffer is None:
                        buffer = state["momentum_buffer"] = grad.copy()
                    else:
                        buffer *= momentum
                        buffer += (1 - dampening) * grad
                    grad = grad + momentum * buffer if group["nesterov"] else buffer
                # In place, with a Python float: NumPy/CuPy keep p's dtype (float32 stays float32).
                param.data -= lr * grad
