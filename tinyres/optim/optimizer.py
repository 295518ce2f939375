"""``Optimizer``: the base class that turns gradients into parameter updates.

An optimizer holds *parameter groups*: each group is a dict with its ``"params"``
(a list of tensors) and its hyperparameters (``"lr"``, ``"momentum"``, ...), so one
network can give, say, its biases another learning rate.  Per-parameter memory (a
momentum buffer, Adam's moment estimates) lives in ``optimizer.state[param]``.

The training loop is always the same three lines::

    optimizer.zero_grad()     # forget the previous batch's gradients
    loss.backward()           # fill p.grad for every parameter
    optimizer.step()          # p.data <- update(p.data, p.grad.data, state)

Updates happen in place on ``p.data`` with the array module that owns it (NumPy on
the CPU, CuPy on the GPU), so parameters never move and never change dtype.
"""
import copy
import functools

from .. import profiler
from ..backend import xp_of
from ..tensor import Tensor


class _Required:
    """Marks a hyperparameter without a default (``SGD`` needs an explicit ``lr``)."""

    def __repr__(self):
        return "<required>"


required = _Required()


def _profiled_step(step):
    """``step`` timed as one event by the open :func:`tinyres.profile`; one check when none is."""
    @functools.wraps(step)
    def profiled_step(self, *args, **kwargs):
        if profiler.active is None:
            return step(self, *args, **kwargs)
        return profiler.active.record_optimizer_step(self, step, args, kwargs)
    return profiled_step


class Optimizer:
    """Base class of the optimizers, mirroring ``torch.optim.Optimizer``.

    params: an iterable of Tensors (e.g. ``model.parameters()``), or of dicts, each a
    parameter group ``{"params": [...], "lr": ..., ...}`` whose missing keys are
    taken from ``defaults``.  Subclasses implement :meth:`step`.
    """

    def __init__(self, params, defaults):
        self.defaults = dict(defaults)
        self.state = {}           # param -> dict of arrays (buffers) and counters
        self.param_groups = []
        name = type(self).__name__
        if isinstance(params, Tensor):
            raise TypeError(f"{name}: params must be an iterable of Tensors (or of dicts), "
                            "got a single Tensor; wrap it in a list: [tensor]")
        if hasattr(params, "parameters") and callable(params.parameters):
            raise TypeError(f"{name}: got a model ({type(params).__name__}); pass "
                            "model.parameters() instead")
        groups = list(params)
        if not groups:
            raise ValueError(f"{name}: got an empty parameter list; does the model have "
                             "parameters, and was the generator already used up?")
        if not isinstance(groups[0], dict):
            groups = [{"params": groups}]
        for group in groups:
            self.add_param_group(group)

    def __init_subclass__(cls, **kwargs):
        # every optimizer's own step() reports to an open tinyres.profile(), if any
        super().__init_subclass__(**kwargs)
        if "step" in cls.__dict__:
            cls.step = _profiled_step(cls.__dict__["step"])

    def add_param_group(self, param_group):
        """Add a group of parameters, e.g. layers unfrozen during fine-tuning.

        Missing hyperparameters are taken from ``defaults``; a parameter may belong to
        one group only.
        """
        name = type(self).__name__
        if not isinstance(param_group, dict):
            raise TypeError(f"{name}: a parameter group must be a dict, got "
                            f"{type(param_group).__name__}")
        params = param_group["params"]
        params = [params] if isinstance(params, Tensor) else list(params)
        for index, param in enumerate(params):
            if not isinstance(param, Tensor):
                raise TypeError(f"{name}: can only optimize Tensors, but parameter {index} "
                                f"is a {type(param).__name__}")
            if not param.is_leaf:
                raise ValueError(f"{name}: parameter {index} was made by an op (it is not a "
                                 "leaf); optimize the tensors you created, not results")
        group = {**param_group, "params": params}
        for key, default in self.defaults.items():
            if default is required and key not in group:
                raise ValueError(f"{name}: parameter group didn't specify a value of "
                                 f"required optimization parameter {key!r}")
            group.setdefault(key, default)
        seen = {id(p) for existing in self.param_groups for p in existing["params"]}
        if any(id(p) in seen for p in params):
            raise ValueError(f"{name}: some parameters appear in more than one parameter group")
        self.param_groups.append(group)

    def zero_grad(self, set_to_none=True):
        """Forget every parameter's gradient (``set_to_none=False`` fills it with zeros)."""
        for group in self.param_groups:
            for param in group["params"]:
                if set_to_none or param.grad is None:
                    param.grad = None
                else:
                    param.grad = Tensor(xp_of(param.grad.data).zeros_like(param.grad.data))

    def step(self):
        """Update every parameter that has a gradient; implemented by each optimizer."""
        raise NotImplementedError

    @staticmethod
    def _gradient(param, where):
        """The gradient array of ``param``, checked to have its shape and dtype."""
        grad = param.grad.data
        if grad.shape != param.data.shape or grad.dtype != param.data.dtype:
            raise ValueError(f"{where}: a parameter of shape {param.data.shape} and dtype "
                             f"{param.data.dtype} has a gradient of shape {grad.shape} and "
                             f"dtype {grad.dtype}")
        return grad

    # ------------------------------------------------------------------ checkpoints
    def state_dict(self):
        """The optimizer's memory as plain data, parameters referred to by position.

        ``{"state": {index: {name: array or number}}, "param_groups": [{..., "params":
        [indices]}]}``, as ``torch.optim.Optimizer.state_dict`` (arrays are copies).
        """
        index_of, groups, next_index = {}, [], 0
        for group in self.param_groups:
            packed = {key: value for key, value in group.items() if key != "params"}
            packed["params"] = []
            for param in group["params"]:
                index_of[id(param)] = next_index
                packed["params"].append(next_index)
                next_index += 1
            groups.append(packed)
        state = {index_of[id(param)]: copy.deepcopy(values)
                 for param, values in self.state.items() if id(param) in index_of}
        return {"state": state, "param_groups": groups}

    def load_state_dict(self, state_dict):
        """Restore what :meth:`state_dict` saved, into an optimizer over the same parameters.

        The saved hyperparameters (``lr``, ``momentum``, ...) replace the current ones, as
        in PyTorch.  Parameter indices may be ints or their strings (as after a trip
        through JSON); each saved buffer must have its parameter's shape.
        """
        name = type(self).__name__
        if not isinstance(state_dict, dict) or set(state_dict) != {"state", "param_groups"}:
            keys = sorted(state_dict) if isinstance(state_dict, dict) else type(state_dict).__name__
            raise ValueError(f"{name}.load_state_dict: expected a dict with 'state' and "
                             f"'param_groups', as state_dict() returns, got {keys}")
        groups = state_dict["param_groups"]
        if len(groups) != len(self.param_groups) or any(
                len(saved["params"]) != len(mine["params"])
                for saved, mine in zip(groups, self.param_groups)):
            raise ValueError(f"{name}.load_state_dict: the saved parameter groups have sizes "
                             f"{[len(g['params']) for g in groups]}, this optimizer has "
                             f"{[len(g['params']) for g in self.param_groups]}")
        by_index = {}
        for saved, mine in zip(groups, self.param_groups):
            for index, param in zip(saved["params"], mine["params"]):
                by_index[int(index)] = param
        state = {}
        for index, values in state_dict["state"].items():
            param = by_index.get(int(index))
            if param is None:
                raise ValueError(f"{name}.load_state_dict: the state names parameter {index}, "
                                 "which is in no saved parameter group")
            state[param] = {key: self._restored(value, param, index, key)
                            for key, value in values.items()}
        for saved, mine in zip(groups, self.param_groups):
            mine.update({key: value for key, value in saved.items() if key != "params"})
        self.state = state

    def _restored(self, value, param, index, key):
        """A saved state entry on the parameter's device: buffers as arrays of its dtype."""
        if getattr(value, "ndim", 0) == 0:
            return copy.deepcopy(value)  # a counter such as Adam's step
        if tuple(value.shape) != tuple(param.data.shape):
            raise ValueError(f"{type(self).__name__}.load_state_dict: {key!r} of parameter "
                             f"{index} has shape {tuple(value.shape)}, the parameter has "
                             f"{tuple(param.data.shape)}")
        # a copy, so the optimizer never shares memory with the dict it was given
        return xp_of(param.data).array(value, dtype=param.data.dtype)

    def __repr__(self):
        lines = [f"{type(self).__name__} ("]
        for number, group in enumerate(self.param_groups):
            lines.append(f"Parameter Group {number}")
            lines += [f"    {key}: {value}" for key, value in sorted(group.items()) if key != "params"]
        return "\n".join(lines + [")"])
