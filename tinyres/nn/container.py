"""``Sequential``: modules applied one after the other, named "0", "1", ... like PyTorch's."""
from collections import OrderedDict

from .module import Module


class Sequential(Module):
    """y = module_n( ... module_1(module_0(x)) ).

    ``Sequential(a, b, c)`` names its children "0", "1", "2" (so a projection
    shortcut's weights are ``downsample.0.weight``); ``Sequential(OrderedDict(...))``
    keeps the given names.  Indexable, sliceable, iterable, ``len()``-able.
    """

    def __init__(self, *modules):
        super().__init__()
        if len(modules) == 1 and isinstance(modules[0], OrderedDict):
            for name, module in modules[0].items():
                self.add_module(name, module)
        else:
            for index, module in enumerate(modules):
                if isinstance(module, type):
                    raise TypeError(f"Sequential: argument {index} is the class {module.__name__}, "
                                    f"not a layer; call it first, e.g. {module.__name__}(...)")
                if not isinstance(module, Module):
                    raise TypeError(f"Sequential: argument {index} is a {type(module).__name__}, "
                                    "expected a Module")
                self.add_module(str(index), module)

    def _index(self, index):
        count = len(self._modules)
        if not -count <= index < count:
            raise IndexError(f"Sequential: index {index} is out of range for {count} modules")
        return index % count

    def __getitem__(self, index):
        modules = list(self._modules.items())
        if isinstance(index, slice):
            return Sequential(OrderedDict(modules[index]))
        return modules[self._index(index)][1]

    def __len__(self):
        return len(self._modules)

    def __iter__(self):
        return iter(self._modules.values())

    def append(self, module):
        """Add ``module`` at the end (named by its position); returns self."""
        self.add_module(str(len(self)), module)
        return self

    def forward(self, input):
        for module in self._modules.values():
            input = module(input)
        return input
