"""tinyres: a from-scratch deep-learning engine for learning how a ResNet really runs.

    import tinyres as tr
    import tinyres.functional as F
"""
from . import functional
from . import nn, models
from . import optim
from .autograd import Function, is_grad_enabled, no_grad
from .backend import available_backends, get_backend, set_backend, use_backend
from .backend.cpu_threads import get_num_threads, set_num_threads
from .gradcheck import GradcheckError, GradcheckReport, gradcheck, rel_error
from .profiler import profile
from .serialization import save, load
from .tensor import Tensor, ones, tensor, zeros

__version__ = "0.1.0"

__all__ = ["Function", "GradcheckError", "GradcheckReport", "Tensor", "available_backends",
           "functional", "get_backend", "get_num_threads", "gradcheck", "is_grad_enabled",
           "no_grad", "ones", "profile", "rel_error", "set_backend", "set_num_threads", "tensor",
           "use_backend", "zeros"]
