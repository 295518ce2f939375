"""``Module``: the base class of layers and networks, mirroring ``torch.nn.Module``.

A module is a tree.  Assigning an attribute registers it by its type:

* a :class:`Parameter`  -> ``_parameters`` (learned, listed by ``parameters()``);
* a ``Module``          -> ``_modules``   (a child; its names get a ``child.`` prefix);
* ``register_buffer``   -> ``_buffers``   (plain arrays that are state but not learned,
  such as batch norm's running statistics).

Everything else about a network follows from walking that tree: the dotted names of
``state_dict()`` (``layer1.0.conv1.weight``), moving to a device, changing the dtype,
switching every layer between training and evaluation.
"""
from collections import OrderedDict, namedtuple

import numpy as np

from .. import profiler
from ..backend import to_device
from ..tensor import Tensor
from .parameter import Parameter
from .state import load_into, to_host_copy

IncompatibleKeys = namedtuple("IncompatibleKeys", ["missing_keys", "unexpected_keys"])


class RemovableHandle:
    """What ``register_forward_hook`` returns; ``handle.remove()`` detaches the hook."""

    def __init__(self, hooks, key):
        self._hooks, self._key = hooks, key

    def remove(self):
        """Detach the hook (a second call does nothing)."""
        self._hooks.pop(self._key, None)


class Module:
    """Base class of every layer and network.

    Subclasses call ``super().__init__()`` first, assign their parameters and
    sub-modules as attributes, and define ``forward``; calling the module runs
    ``forward`` (and any forward hooks).
    """

    _next_hook_key = 0

    def __init__(self):
        # object.__setattr__, because our own __setattr__ needs these dicts to exist
        object.__setattr__(self, "_parameters", OrderedDict())
        object.__setattr__(self, "_buffers", OrderedDict())
        object.__setattr__(self, "_non_persistent", set())
        object.__setattr__(self, "_modules", OrderedDict())
        object.__setattr__(self, "_forward_hooks", OrderedDict())
        object.__setattr__(self, "training", True)

    # ------------------------------------------------------------------ registration
    def __setattr__(self, name, value):
        if "_parameters" not in self.__dict__:
            raise AttributeError(f"{type(self).__name__}: call super().__init__() before "
                                 f"assigning attributes (while setting {name!r})")
        if isinstance(value, Parameter):
            self._forget(name)
            self._parameters[name] = value
        elif isinstance(value, Module):
            self._forget(name)
            self._modules[name] = value
        elif name in self._parameters:
            if value is not None:
                raise TypeError(f"{type(self).__name__}.{name} is a parameter; assign a "
                                f"tinyres.nn.Parameter (or None), got {type(value).__name__}")
            self._parameters[name] = None
        elif name in self._buffers:
            self._buffers[name] = value
        elif name in self._modules and value is None:
            self._modules[name] = None
        else:
            object.__setattr__(self, name, value)

    def __getattr__(self, name):
        # only called when ordinary lookup fails, i.e. for registered entries
        for registry in ("_parameters", "_buffers", "_modules"):
            entries = self.__dict__.get(registry)
            if entries is not None and name in entries:
                return entries[name]
        raise AttributeError(f"{type(self).__name__} has no attribute {name!r}")

    def __delattr__(self, name):
        if not self._forget(name):
            object.__delattr__(self, name)

    def _forget(self, name):
        """Remove ``name`` from every registry (and the plain attributes); True if it was registered."""
        found = False
        for registry in (self._parameters, self._buffers, self._modules):
            if name in registry:
                del registry[name]
                found = True
        self._non_persistent.discard(name)
        self.__dict__.pop(name, None)
        return found

    def register_parameter(self, name, parameter):
        """Register ``parameter`` (a Parameter, or None for an absent one such as ``bias=False``)."""
        if parameter is not None and not isinstance(parameter, Parameter):
            raise TypeError(f"register_parameter({name!r}): expected a Parameter or None, "
                            f"got {type(parameter).__name__}")
        self._forget(name)
        self._parameters[name] = parameter

    def register_buffer(self, name, array, persistent=True):
        """Register a plain array as state that is saved but not learned (e.g. ``running_mean``).

        ``persistent=False`` keeps it out of ``state_dict()``.
        """
        if isinstance(array, Tensor):
            raise TypeError(f"register_buffer({name!r}): a buffer is a plain array, not a "
                            "Tensor; pass tensor.data")
        if array is not None and not hasattr(array, "dtype"):
            raise TypeError(f"register_buffer({name!r}): expected an array, got {type(array).__name__}")
        self._forget(name)
        self._buffers[name] = array
        if not persistent:
            self._non_persistent.add(name)

    def add_module(self, name, module):
        """Register ``module`` as a child called ``name`` (same as assigning it as an attribute)."""
        if module is not None and not isinstance(module, Module):
            raise TypeError(f"add_module({name!r}): expected a Module, got {type(module).__name__}")
        self._forget(name)
        self._modules[name] = module

    # ------------------------------------------------------------------ running
    def forward(self, *inputs):
        """The computation; every subclass defines it."""
        raise NotImplementedError(f"{type(self).__name__} does not define forward()")

    def __call__(self, *inputs, **kwargs):
        if profiler.active is None:
            output = self.forward(*inputs, **kwargs)
        else:   # one event around the layer, so that its ops nest inside it in the trace
            output = profiler.active.record_module(self, inputs, kwargs)
        for hook in list(self._forward_hooks.values()):
            result = hook(self, inputs, output)
            if result is not None:
                output = result
        return output

    def register_forward_hook(self, hook):
        """Call ``hook(module, inputs, output)`` after every forward; returns a removable handle.

        A hook that returns a value replaces the output with it.
        """
        key = Module._next_hook_key
        Module._next_hook_key += 1
        self._forward_hooks[key] = hook
        return RemovableHandle(self._forward_hooks, key)

    # ------------------------------------------------------------------ walking the tree
    def named_children(self):
        """Yield ``(name, module)`` for the direct children."""
        for name, module in self._modules.items():
            if module is not None:
                yield name, module

    def children(self):
        """Yield the direct children."""
        for _, module in self.named_children():
            yield module

    def named_modules(self, prefix=""):
        """Yield ``(dotted name, module)`` for this module (name ``""``) and every descendant once."""
        seen = set()
        stack = [(prefix, self)]
        while stack:
            name, module = stack.pop()
            if id(module) in seen:
                continue
            seen.add(id(module))
            yield name, module
            children = [(f"{name}.{child}" if name else child, m) for child, m in module.named_children()]
            stack.extend(reversed(children))  # reversed, so children come out in order

    def modules(self):
        """Yield this module and every descendant."""
        for _, module in self.named_modules():
            yield module

    def named_parameters(self, prefix="", recurse=True):
        """Yield ``(dotted name, Parameter)``, each shared parameter once."""
        yield from self._named_entries("_parameters", prefix, recurse)

    def parameters(self, recurse=True):
        """Yield every Parameter (what an optimizer updates)."""
        for _, parameter in self.named_parameters(recurse=recurse):
            yield parameter

    def named_buffers(self, prefix="", recurse=True):
        """Yield ``(dotted name, array)`` for every buffer."""
        yield from self._named_entries("_buffers", prefix, recurse)

    def buffers(self, recurse=True):
        """Yield every buffer array."""
        for _, array in self.named_buffers(recurse=recurse):
            yield array

    def _named_entries(self, registry, prefix, recurse):
        modules = self.named_modules(prefix) if recurse else [(prefix, self)]
        seen = set()
        for module_name, module in modules:
            for name, value in getattr(module, registry).items():
                if value is None or id(value) in seen:
                    continue
                seen.add(id(value))
                yield (f"{module_name}.{name}" if module_name else name), value

    def apply(self, function):
        """Call ``function(module)`` on every descendant, then on this module; returns self."""
        for child in self.children():
            child.apply(function)
        function(self)
        return self

    # ------------------------------------------------------------------ modes
    def train(self, mode=True):
        """Training mode (batch norm uses batch statistics) for this module and all descendants."""
        if not isinstance(mode, bool):
            raise TypeError(f"train: mode must be True or False, got {mode!r}")
        for module in self.modules():
            object.__setattr__(module, "training", mode)
        return self

    def eval(self):
        """Evaluation mode (batch norm uses its running statistics); same as ``train(False)``."""
        return self.train(False)

    def requires_grad_(self, requires_grad=True):
        """Turn gradient tracking of every parameter on or off (e.g. to freeze a backbone)."""
        for parameter in self.parameters():
            parameter.requires_grad = requires_grad
        return self

    def zero_grad(self):
        """Forget the accumulated gradient of every parameter (``.grad`` becomes None)."""
        for parameter in self.parameters():
            parameter.grad = None

    # ------------------------------------------------------------------ device and dtype
    def to(self, device):
        """Move every parameter (and its gradient) and buffer to ``"cpu"`` or ``"cuda"``, in place."""
        for parameter in self.parameters():
            parameter.data = to_device(parameter.data, device)
            if parameter.grad is not None:
                parameter.grad = Tensor(to_device(parameter.grad.data, device))
        for module in self.modules():
            for name, array in module._buffers.items():
                if array is not None:
                    module._buffers[name] = to_device(array, device)
        return self

    def astype(self, dtype):
        """Convert every floating parameter and buffer to ``dtype`` (float32 or float64), in place.

        Integer buffers such as ``num_batches_tracked`` keep their dtype.  The
        Parameter objects stay the same, so an optimizer built earlier still holds them.
        """
        dtype = np.dtype(dtype)
        if not np.issubdtype(dtype, np.floating):
            raise TypeError(f"astype: a model's parameters must be floating point, got {dtype}")
        for parameter in self.parameters():
            parameter.data = parameter.data.astype(dtype, copy=False)
            if parameter.grad is not None:
                parameter.grad = Tensor(parameter.grad.data.astype(dtype, copy=False))
        for module in self.modules():
            for name, array in module._buffers.items():
                if array is not None and np.issubdtype(array.dtype, np.floating):
                    module._buffers[name] = array.astype(dtype, copy=False)
        return self

    def double(self):
        """``astype(float64)`` -- what a finite-difference gradient check needs."""
        return self.astype(np.float64)

    def float(self):
        """``astype(float32)`` -- the default training precision."""
        return self.astype(np.float32)

    # ------------------------------------------------------------------ state
    def _state_entries(self, prefix=""):
        """Every saved entry as ``name -> (module, attribute, is_parameter)``, in torch's order:

        a module's parameters, then its buffers, then each child's entries.
        """
        entries = OrderedDict()
        for name, parameter in self._parameters.items():
            if parameter is not None:
                entries[prefix + name] = (self, name, True)
        for name, array in self._buffers.items():
            if array is not None and name not in self._non_persistent:
                entries[prefix + name] = (self, name, False)
        for name, child in self.named_children():
            entries.update(child._state_entries(f"{prefix}{name}."))
        return entries

    def state_dict(self):
        """All parameters and persistent buffers as ``dotted name -> NumPy array`` (host copies).

        The copies do not share memory with the model, so later training does not
        change a state dict that was saved aside.
        """
        state = OrderedDict()
        for key, (module, name, is_parameter) in self._state_entries().items():
            value = module._parameters[name].data if is_parameter else module._buffers[name]
            state[key] = to_host_copy(value)
        return state

    def load_state_dict(self, state_dict, strict=True):
        """Copy arrays from ``state_dict`` into the parameters and buffers, in place.

        Values may be NumPy arrays, Tensors, or anything ``np.asarray`` accepts; float
        arrays are converted to each parameter's own dtype, so a float64 checkpoint
        loads into a float32 model.  Missing ``num_batches_tracked`` entries are
        allowed (older checkpoints lack them).  With ``strict=True`` any missing or
        unexpected key is an error; shape mismatches always are.  All problems are
        reported in one :class:`StateDictError` and nothing is loaded.

        Returns ``IncompatibleKeys(missing_keys, unexpected_keys)``.
        """
        missing, unexpected = load_into(self._state_entries(), state_dict, strict,
                                        model_name=type(self).__name__)
        return IncompatibleKeys(missing, unexpected)

    # ------------------------------------------------------------------ printing
    def extra_repr(self):
        """The text between this module's parentheses, e.g. ``'3, 64, kernel_size=(7, 7)'``."""
        return ""

    def __repr__(self):
        lines = [line for line in self.extra_repr().split("\n") if line]
        for name, module in self._modules.items():
            child = repr(module).replace("\n", "\n  ")
            lines.append(f"({name}): {child}")
        if not self._modules:
            return f"{type(self).__name__}({self.extra_repr()})"
        body = "\n  ".join(lines)
        return f"{type(self).__name__}(\n  {body}\n)"

