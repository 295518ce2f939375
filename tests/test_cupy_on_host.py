"""The CuPy kernels (``backend/cupy_kernels.py``) checked on a machine without a GPU.

``test_cupy_kernels.py`` runs the kernels on a real GPU and is skipped everywhere else,
so on its own nothing would check, before a GPU is at hand, that the CUDA C bodies even
compile or that the wrappers' index arithmetic is right.  This module checks both on the
host CPU.  It imports ``cupy_kernels`` afresh against a stand-in ``cupy`` module whose
array functions are NumPy's, and whose ``ElementwiseKernel`` and ``ReductionKernel``
turn the declared parameters and the C body into a small C++ function, compile it with
the system C++ compiler and run it for every element ``i`` -- with CuPy's conventions:

* ``raw T x`` is indexed by hand with a flat C-order index (every index is checked here,
  where a GPU would read out of bounds silently);
* a non-raw ``T x`` is matched element by element with the output, broadcast like NumPy;
* an output ``T y`` is element ``i`` of the output array, readable and assignable;
* ``T`` is the dtype of the array arguments declared with ``T`` (they must agree), a
  scalar is converted to its parameter's type, and ``i`` is a ``ptrdiff_t``.

What this covers: the CUDA C bodies and the Python wrappers around them, compiled for
the host CPU and compared with ``numpy_kernels`` on a grid of shapes (float32 and
float64; exactly for copies, maxima, argmax and relu, to rounding for sums).  New output
arrays are filled with NaN (or the most negative integer), so an element a kernel fails
to write shows up instead of passing on stale memory.

What it cannot cover: GPU-specific behaviour -- the real nvcc/NVRTC (its dialect, its
options such as ``--fmad=false``; the host build rounds every ``a*b + c`` twice, as
NumPy does, with ``-ffp-contract=off``), device memory spaces, the parallel scheduling of
threads and blocks (here one loop runs the elements in order), and cuBLAS: the matrix
products in ``conv2d_forward``/``conv2d_backward`` and the statistics of batch norm run in
NumPy here.  The real GPU tests stay in ``test_cupy_kernels.py``.

The stand-in lives only inside the fixture that imports ``cupy_kernels`` with it: once
this module's tests are done, neither ``cupy`` nor that import is left for other tests.
"""
import ast
import ctypes
import hashlib
import importlib
import importlib.util
import inspect
import shutil
import subprocess
import sys
import types

import numpy as np
import pytest

from conftest import DTYPES, assert_kernel_matches
from grids import (KERNEL_NORM_SHAPES, KERNEL_RELU_SHAPES, case_id, conv_geometries_for,
                   pool_geometries_for)
from tinyres.backend import KERNEL_NAMES
from tinyres.backend import numpy_kernels as reference
from tinyres.backend.shapes import conv_output_hw

KERNEL_MODULE = "tinyres.backend.cupy_kernels"

# --------------------------------------------------------------------------- the stand-in
# CuPy's scalar type names and the C types they mean (float16 has no host equivalent here).
_C_TYPES = {
    np.dtype(np.bool_): "bool",
    np.dtype(np.int8): "signed char", np.dtype(np.uint8): "unsigned char",
    np.dtype(np.int16): "short", np.dtype(np.uint16): "unsigned short",
    np.dtype(np.int32): "int", np.dtype(np.uint32): "unsigned int",
    np.dtype(np.int64): "long long", np.dtype(np.uint64): "unsigned long long",
    np.dtype(np.float32): "float", np.dtype(np.float64): "double",
}

# The C++ every generated kernel starts with.
_PRELUDE = r"""
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <type_traits>

// CUDA qualifiers a body may carry mean nothing on the host
#define __device__
#define __host__
#define __global__
#define __forceinline__ inline
#define __restrict__ __restrict

namespace {

// The first out-of-bounds access of a launch: parameter position, element i, index, length.
struct Fault { int parameter; ptrdiff_t element, index, length; };
Fault fault = {-1, 0, 0, 0};
ptrdiff_t current_element = 0;

// A `raw` parameter: indexed with a flat C-order index, as CuPy's CArray.  Each index is
// checked, because on a GPU an out-of-bounds read returns garbage without a word.
template <typename V>
struct RawArray {
    V* data;
    ptrdiff_t length;
    int parameter;
    V& operator[](ptrdiff_t index) const {
        if (index < 0 || index >= length) {
            if (fault.parameter < 0) fault = {parameter, current_element, index, length};
            static typename std::remove_const<V>::type spare;
            spare = 0;
            return spare;
        }
        return data[index];
    }
    ptrdiff_t size() const { return length; }
};

// 0 when every access was in bounds, else 1 + the faulting parameter's position.
int report_fault(ptrdiff_t* out) {
    if (fault.parameter < 0) return 0;
    out[0] = fault.element;
    out[1] = fault.index;
    out[2] = fault.length;
    const int status = fault.parameter + 1;
    fault = {-1, 0, 0, 0};
    return status;
}

}  // namespace
"""


class _Parameter:
    """One entry of a CuPy parameter list such as ``"raw T x"`` or ``"int32 height"``."""

    def __init__(self, text, is_const):
        words = text.split()
        if len(words) < 2:
            raise ValueError(f"ElementwiseKernel: parameter {text!r} lacks a type or a name")
        *qualifiers, type_text, self.name = words
        unknown = [word for word in qualifiers if word not in ("raw", "_non_const")]
        if unknown:
            raise ValueError(f"ElementwiseKernel: unknown keyword {unknown[0]!r} in {text!r}")
        self.raw = "raw" in qualifiers
        self.is_const = is_const and "_non_const" not in qualifiers
        # as in CuPy, a one-letter type is a placeholder bound at the call (T, U, ...)
        self.placeholder = type_text if len(type_text) == 1 else None
        self.dtype = None if self.placeholder else np.dtype(type_text)
        if self.dtype is not None and self.dtype not in _C_TYPES:
            raise TypeError(f"ElementwiseKernel: parameter {self.name!r} has type "
                            f"{type_text!r}, which the host stand-in cannot compile")

    def c_type(self):
        """The type's name in the generated C++: the placeholder or the C scalar type."""
        return self.placeholder or _C_TYPES[self.dtype]


def _parse_parameters(text, is_const):
    return tuple(_Parameter(entry, is_const) for entry in text.split(",") if entry.strip())


def _is_array(value):
    return isinstance(value, np.ndarray)


def _bind_placeholders(kernel_name, parameters, pairs):
    """{placeholder: dtype} from the array arguments, CuPy's rule: arrays must agree.

    ``pairs`` are (parameter, argument) in CuPy's binding order (outputs first, then
    inputs); scalars never bind a placeholder, they take the type it is bound to.  Every
    placeholder among ``parameters`` must end up bound.
    """
    bound = {}
    for parameter, argument in pairs:
        if not _is_array(argument):
            continue
        expected = parameter.dtype if parameter.placeholder is None else \
            bound.setdefault(parameter.placeholder, argument.dtype)
        if argument.dtype != expected:
            raise TypeError(f"{kernel_name}: parameter {parameter.name!r} got a "
                            f"{argument.dtype} array, expected {expected} (type is mismatched)")
    missing = {p.placeholder for p in parameters if p.placeholder} - set(bound)
    if missing:
        raise TypeError(f"{kernel_name}: no array argument fixes the type "
                        f"{', '.join(sorted(missing))}")
    return bound


def _dtype_of(parameter, bound):
    return parameter.dtype if parameter.placeholder is None else bound[parameter.placeholder]


def _scalar_buffer(kernel_name, parameter, value, dtype):
    """``value`` as a 0-d array of ``dtype``, refusing a conversion that changes it."""
    if not isinstance(value, (int, float, bool, np.generic)):
        raise TypeError(f"{kernel_name}: parameter {parameter.name!r} got a "
                        f"{type(value).__name__}, expected an array or a scalar")
    converted = np.array(value).astype(dtype)
    if dtype.kind in "biu" and converted != value:
        raise OverflowError(f"{kernel_name}: parameter {parameter.name!r} got {value!r}, "
                            f"which {dtype} cannot hold")
    return converted


def _declarations(parameters, kinds, element_index, first_position=0):
    """The C++ that gives the body its names: (before the loop, inside the loop).

    ``kinds[k]`` is "scalar" or "array"; parameter k arrives as ``_args[first_position + k]``.
    Inside the loop a non-raw array parameter is a reference to element ``element_index``.
    """
    before, inside = [], []
    for position, (parameter, kind) in enumerate(zip(parameters, kinds), first_position):
        const = "const " if parameter.is_const else ""
        c_type, name = parameter.c_type(), parameter.name
        pointer = f"static_cast<{const}{c_type}*>(_args[{position}])"
        if kind == "scalar":
            before.append(f"const {c_type} {name} = *static_cast<const {c_type}*>"
                          f"(_args[{position}]);")
        elif parameter.raw:
            before.append(f"const RawArray<{const}{c_type}> {name} = "
                          f"{{{pointer}, _lengths[{position}], {position}}};")
        else:
            before.append(f"{const}{c_type}* const _raw_{name} = {pointer};")
            inside.append(f"{const}{c_type} &{name} = _raw_{name}[{element_index}];")
    return before, inside


def _typedefs(bound):
    return "".join(f"typedef {_C_TYPES[dtype]} {letter};\n"
                   for letter, dtype in sorted(bound.items()))


def _indent(lines, spaces):
    return "".join(" " * spaces + line + "\n" for line in lines)


class KernelCompileError(RuntimeError):
    """The host C++ compiler rejected a kernel's generated source."""


class HostCompiler:
    """Compiles generated kernel sources into shared libraries, each source once."""

    # -ffp-contract=off: round a*b + c twice, as NumPy does (what --fmad=false asks of nvcc)
    FLAGS = ("-std=c++14", "-O1", "-ffp-contract=off", "-fPIC", "-shared")

    def __init__(self, executable, build_dir):
        self.executable = executable
        self.build_dir = build_dir
        self.loaded = {}      # source digest -> ctypes function

    def load(self, symbol, source, extra_sizes=0):
        """The ``extern "C"`` function ``symbol`` of ``source``, compiled on first use."""
        digest = hashlib.sha1(source.encode()).hexdigest()[:16]
        if digest in self.loaded:
            return self.loaded[digest]
        if self.executable is None:
            raise KernelCompileError(f"{symbol}: no C++ compiler (g++ or c++) on PATH")
        source_path = self.build_dir / f"{symbol}_{digest}.cpp"
        library_path = source_path.with_suffix(".so")
        source_path.write_text(source)
        result = subprocess.run([self.executable, *self.FLAGS, "-o", str(library_path),
                                 str(source_path)], capture_output=True, text=True)
        if result.returncode != 0:
            numbered = "\n".join(f"{number:4d}  {line}"
                                 for number, line in enumerate(source.splitlines(), 1))
            raise KernelCompileError(f"{symbol} does not compile:\n{result.stderr}\n{numbered}")
        function = getattr(ctypes.CDLL(str(library_path)), symbol)
        sizes = [ctypes.c_ssize_t] * (1 + extra_sizes)
        function.argtypes = [ctypes.POINTER(ctypes.c_void_p), ctypes.POINTER(ctypes.c_ssize_t),
                             *sizes, ctypes.POINTER(ctypes.c_ssize_t)]
        function.restype = ctypes.c_int
        self.loaded[digest] = function
        return function


def _launch(kernel_name, parameters, function, buffers, lengths, sizes):
    """Call a compiled kernel; raise IndexError naming the first out-of-bounds access."""
    pointers = (ctypes.c_void_p * len(buffers))(*(buffer.ctypes.data for buffer in buffers))
    length_array = (ctypes.c_ssize_t * len(lengths))(*lengths)
    fault = (ctypes.c_ssize_t * 3)()
    status = function(pointers, length_array, *sizes, fault)
    if status:
        parameter = parameters[status - 1]
        raise IndexError(f"{kernel_name}: element i={fault[0]} indexed raw parameter "
                         f"{parameter.name!r} at {fault[1]}, outside [0, {fault[2]})")


def _empty(shape, dtype=np.float64, order="C"):
    """Uninitialized memory made visible: NaN for floats, the most negative value for ints."""
    array = np.empty(shape, dtype=dtype, order=order)
    if array.dtype.kind == "f":
        array.fill(np.nan)
    elif array.dtype.kind in "iu":
        array.fill(np.iinfo(array.dtype).min)
    return array


class _Arguments:
    """What one launch passes: a buffer per argument, its length, and what to write back."""

    def __init__(self):
        self.buffers, self.lengths, self.kinds, self.write_back = [], [], [], []

    def add_scalar(self, buffer):
        self.buffers.append(buffer)
        self.lengths.append(1)
        self.kinds.append("scalar")

    def add_array(self, buffer, original=None):
        self.buffers.append(buffer)
        self.lengths.append(buffer.size)
        self.kinds.append("array")
        if original is not None and buffer is not original:
            self.write_back.append((original, buffer))   # an output that was not contiguous

    def finish(self):
        for original, buffer in self.write_back:
            original[...] = buffer


class HostElementwiseKernel:
    """``cupy.ElementwiseKernel`` on the CPU: records its arguments, runs the body per element.

    Calling it follows CuPy: pass the inputs, optionally followed by every output (written
    in place); otherwise the outputs are allocated with the broadcast shape of the non-raw
    arrays (or ``size``).  One compiled C++ loop runs i = 0 .. size-1.
    """

    def __init__(self, compiler, registry, in_params, out_params, operation, name="kernel",
                 **options):
        self.compiler = compiler
        self.in_params, self.out_params = in_params, out_params
        self.operation, self.name = operation, name
        # a preamble is compiled in; NVRTC options (--fmad=false, ...) and reduce_dims are
        # recorded, not applied: they mean nothing to the host build, whose own fixed flags
        # (HostCompiler.FLAGS) already round as --fmad=false asks
        self.options = options
        self.inputs = _parse_parameters(in_params, is_const=True)
        self.outputs = _parse_parameters(out_params, is_const=False)
        if "i" in [p.name for p in self.inputs + self.outputs]:
            raise ValueError(f"{name}: 'i' cannot be a parameter name, it is the element index")
        registry.append(self)

    @property
    def parameters(self):
        """Inputs then outputs, the order of the arguments and of ``_args`` in the C++."""
        return self.inputs + self.outputs

    def source(self, bound, kinds):
        """The C++ of this kernel for placeholder types ``bound`` and argument ``kinds``."""
        before, inside = _declarations(self.parameters, kinds, "i")
        return (_PRELUDE + _typedefs(bound) + self.options.get("preamble", "") + "\n"
                f'extern "C" int {self.name}(void* const* _args, const ptrdiff_t* _lengths,\n'
                f"        ptrdiff_t _size, ptrdiff_t* _fault) {{\n"
                + _indent(before, 4)
                + "    for (ptrdiff_t i = 0; i < _size; ++i) {\n"
                + "        current_element = i;\n"
                + _indent(inside, 8)
                + "        {\n" + self.operation + "\n        }\n"
                + "    }\n    return report_fault(_fault);\n}\n")

    def compile(self, bound, kinds):
        """Compile (once) for ``bound`` placeholder types; returns the ctypes function."""
        return self.compiler.load(self.name, self.source(bound, kinds))

    def __call__(self, *args, size=None, block_size=None, stream=None):
        # block_size and stream place the launch on the GPU: nothing to do on the host
        nin, nout = len(self.inputs), len(self.outputs)
        if len(args) not in (nin, nin + nout):
            raise TypeError(f"{self.name}: got {len(args)} arguments, expected {nin} inputs "
                            f"or {nin + nout} with the outputs")
        outputs = list(args[nin:])
        if any(not _is_array(a) for a in outputs):
            raise TypeError(f"{self.name}: outputs must be arrays")
        nonraw = [a for p, a in zip(self.parameters, args) if not p.raw and _is_array(a)]
        if size is not None and nonraw:
            raise ValueError(f"{self.name}: size= is allowed only when every array is raw")
        if size is None and not nonraw:
            raise ValueError(f"{self.name}: the loop size is undecided (every array is raw: "
                             "pass size=)")
        shape = (size,) if size is not None else np.broadcast_shapes(*(a.shape for a in nonraw))
        bound = _bind_placeholders(self.name, self.parameters,
                                   [*zip(self.outputs, outputs), *zip(self.inputs, args)])
        if outputs:
            for parameter, output in zip(self.outputs, outputs):
                if not parameter.raw and output.shape != shape:
                    raise ValueError(f"{self.name}: output {parameter.name!r} has shape "
                                     f"{output.shape}, expected {shape}")
        else:
            if any(p.raw for p in self.outputs) and size is None:
                raise ValueError(f"{self.name}: a raw output needs size=")
            outputs = [_empty(shape, _dtype_of(p, bound)) for p in self.outputs]
        result = outputs[0] if nout == 1 else tuple(outputs)
        if 0 in shape:
            return result

        arguments = _Arguments()
        for parameter, value in zip(self.inputs, args[:nin]):
            dtype = _dtype_of(parameter, bound)
            if not _is_array(value):
                arguments.add_scalar(_scalar_buffer(self.name, parameter, value, dtype))
            elif parameter.raw:
                arguments.add_array(np.ascontiguousarray(value))
            else:
                arguments.add_array(np.broadcast_to(value, shape).copy())
        for parameter, output in zip(self.outputs, outputs):
            arguments.add_array(np.ascontiguousarray(output), original=output)
        function = self.compile(bound, arguments.kinds)
        _launch(self.name, self.parameters, function, arguments.buffers, arguments.lengths,
                (int(np.prod(shape)),))
        arguments.finish()
        return result


class HostReductionKernel:
    """``cupy.ReductionKernel`` on the CPU: map each element, fold with ``reduce_expr``.

    The reduced axes are moved last, so output element ``_i`` folds inputs
    ``_i * reduce_size + k`` for k in order (CuPy folds a tree: the order differs, so sums
    agree to rounding only).
    """

    def __init__(self, compiler, registry, in_params, out_params, map_expr, reduce_expr,
                 post_map_expr, identity, name="reduce_kernel", reduce_type=None, **options):
        self.compiler = compiler
        self.in_params, self.out_params = in_params, out_params
        self.map_expr, self.reduce_expr, self.post_map_expr = map_expr, reduce_expr, post_map_expr
        self.identity, self.name, self.reduce_type = identity, name, reduce_type
        self.options = options        # as HostElementwiseKernel: NVRTC options are not applied
        self.inputs = _parse_parameters(in_params, is_const=True)
        self.outputs = _parse_parameters(out_params, is_const=False)
        if any(p.raw for p in self.inputs + self.outputs):
            raise NotImplementedError(f"{name}: the host stand-in has no raw reductions")
        registry.append(self)

    @property
    def parameters(self):
        """Inputs then outputs, the order of the arguments and of ``_args`` in the C++."""
        return self.inputs + self.outputs

    def source(self, bound, kinds):
        """The C++ of this reduction for placeholder types ``bound`` and argument ``kinds``."""
        nin = len(self.inputs)
        before, inputs = _declarations(self.inputs, kinds[:nin], "_j")
        output_before, outputs = _declarations(self.outputs, kinds[nin:], "_i", nin)
        reduce_type = self.reduce_type or self.outputs[0].c_type()
        return (_PRELUDE + _typedefs(bound) + self.options.get("preamble", "") + "\n"
                f"#define REDUCE(a, b) ({self.reduce_expr})\n"
                f"#define POST_MAP(a) ({self.post_map_expr})\n"
                f"typedef {reduce_type} _type_reduce;\n"
                f'extern "C" int {self.name}(void* const* _args, const ptrdiff_t* _lengths,\n'
                f"        ptrdiff_t _out_size, ptrdiff_t _reduce_size, ptrdiff_t* _fault) {{\n"
                + _indent(before + output_before, 4)
                + "    for (ptrdiff_t _i = 0; _i < _out_size; ++_i) {\n"
                + f"        _type_reduce _s = _type_reduce({self.identity});\n"
                + "        for (ptrdiff_t _k = 0; _k < _reduce_size; ++_k) {\n"
                + "            const ptrdiff_t _j = _i * _reduce_size + _k;\n"
                + "            current_element = _j;\n"
                + _indent(inputs, 12)
                + f"            _type_reduce _a = static_cast<_type_reduce>({self.map_expr});\n"
                + "            _s = REDUCE(_s, _a);\n"
                + "        }\n"
                + _indent(outputs, 8)
                + "        POST_MAP(_s);\n"
                + "    }\n    return report_fault(_fault);\n}\n")

    def compile(self, bound, kinds):
        """Compile (once) for ``bound`` placeholder types; returns the ctypes function."""
        return self.compiler.load(self.name, self.source(bound, kinds), extra_sizes=1)

    def __call__(self, *args, out=None, axis=None, keepdims=False, stream=None):
        if len(args) != len(self.inputs):
            raise TypeError(f"{self.name}: got {len(args)} arguments, expected "
                            f"{len(self.inputs)} inputs (the output goes in out=)")
        arrays = [a for a in args if _is_array(a)]
        shape = np.broadcast_shapes(*(a.shape for a in arrays))
        axes = range(len(shape)) if axis is None else np.atleast_1d(axis)
        reduced = tuple(sorted(int(a) % len(shape) for a in axes))
        kept = tuple(a for a in range(len(shape)) if a not in reduced)
        out_shape = tuple(1 if a in reduced else shape[a] for a in range(len(shape))) \
            if keepdims else tuple(shape[a] for a in kept)
        outputs = [out] if out is not None else []
        bound = _bind_placeholders(self.name, self.parameters,
                                   [*zip(self.outputs, outputs), *zip(self.inputs, args)])
        if out is None:
            out = _empty(out_shape, _dtype_of(self.outputs[0], bound))
        elif out.shape != out_shape:
            raise ValueError(f"{self.name}: out has shape {out.shape}, expected {out_shape}")

        arguments = _Arguments()
        for parameter, value in zip(self.inputs, args):
            if _is_array(value):
                spread = np.broadcast_to(value, shape).transpose(kept + reduced)
                arguments.add_array(np.ascontiguousarray(spread))
            else:
                arguments.add_scalar(_scalar_buffer(self.name, parameter, value,
                                                    _dtype_of(parameter, bound)))
        arguments.add_array(np.ascontiguousarray(out), original=out)
        function = self.compile(bound, arguments.kinds)
        out_size = int(np.prod(out_shape))
        reduce_size = int(np.prod([shape[a] for a in reduced]))
        _launch(self.name, self.parameters, function, arguments.buffers, arguments.lengths,
                (out_size, reduce_size))
        arguments.finish()
        return out


def make_standin_cupy(compiler):
    """A module named ``cupy`` with what ``cupy_kernels`` uses, on NumPy and the host compiler.

    ``standin.kernels`` lists every kernel constructed, in order.
    """
    standin = types.ModuleType("cupy", "Host stand-in for cupy (tests/test_cupy_on_host.py)")
    standin.kernels = []
    standin.compiler = compiler
    standin.ElementwiseKernel = lambda *a, **k: HostElementwiseKernel(compiler, standin.kernels,
                                                                       *a, **k)
    standin.ReductionKernel = lambda *a, **k: HostReductionKernel(compiler, standin.kernels,
                                                                   *a, **k)
    standin.ndarray = np.ndarray
    standin.empty = _empty
    for name in ("zeros", "full", "ascontiguousarray", "asarray", "sqrt", "inf",
                 "float32", "float64", "int32", "int64", "dtype"):
        setattr(standin, name, getattr(np, name))
    standin.asnumpy = np.asarray
    return standin


# --------------------------------------------------------------------------- fixtures
def _kernel_variables():
    """Names of the module-level variables of cupy_kernels.py bound to a CuPy kernel (by AST)."""
    path = importlib.util.find_spec(KERNEL_MODULE).origin
    tree = ast.parse(open(path, encoding="utf-8").read())
    names = []
    for node in tree.body:
        if (isinstance(node, ast.Assign) and isinstance(node.value, ast.Call)
                and isinstance(node.value.func, ast.Attribute)
                and node.value.func.attr in ("ElementwiseKernel", "ReductionKernel")):
            names += [target.id for target in node.targets if isinstance(target, ast.Name)]
    return names


KERNEL_VARIABLES = _kernel_variables()


@pytest.fixture(scope="module")
def host_compiler(tmp_path_factory):
    """The HostCompiler (its executable is None when the machine has no C++ compiler)."""
    executable = shutil.which("g++") or shutil.which("c++")
    return HostCompiler(executable, tmp_path_factory.mktemp("cupy_on_host"))


@pytest.fixture(scope="module")
def kernel_module(host_compiler):
    """``cupy_kernels`` imported afresh against the stand-in; both are gone afterwards."""
    package = importlib.import_module("tinyres.backend")
    with pytest.MonkeyPatch.context() as patch:
        patch.setitem(sys.modules, "cupy", make_standin_cupy(host_compiler))
        # record what is there now (a real cupy_kernels on a GPU machine, or nothing), so
        # leaving the context puts it back; then clear the module so the import runs afresh
        # (the import rebinds the package attribute, which `from tinyres.backend import
        # cupy_kernels` would otherwise keep finding)
        patch.setitem(sys.modules, KERNEL_MODULE, None)
        del sys.modules[KERNEL_MODULE]
        patch.setattr(package, "cupy_kernels", None, raising=False)
        yield importlib.import_module(KERNEL_MODULE)


@pytest.fixture(scope="module")
def gpu(kernel_module, host_compiler):
    """``kernel_module`` for the tests that run kernels: skipped without a C++ compiler."""
    if host_compiler.executable is None:
        pytest.skip("no C++ compiler (g++ or c++) on PATH: the stand-in compiles the CUDA C "
                    "bodies for the host")
    return kernel_module


@pytest.fixture
def standin(gpu, host_compiler):
    """A stand-in of its own for the tests of the stand-in (its kernels are not the module's)."""
    return make_standin_cupy(host_compiler)


# --------------------------------------------------------------------------- the grids
# The kernel grids of tests/grids.py on two fixed images, so that every geometry runs on
# both: batch 2 with odd H and even W, batch 1 with even H and odd W.
X_SHAPES = [(2, 3, 9, 8), (1, 2, 6, 7)]
CONV_CASES = [(x_shape, geometry) for x_shape in X_SHAPES
              for geometry in conv_geometries_for(x_shape)]
POOL_CASES = [(x_shape, geometry) for x_shape in X_SHAPES
              for geometry in pool_geometries_for(x_shape)]
NEEDS = [(True, True), (True, False), (False, True)]


# --------------------------------------------------------------------------- the stand-in itself
# So that a pass below means something: the stand-in follows CuPy where it matters.
def test_standin_broadcasts_non_raw_inputs_and_writes_outputs_in_place(standin, rng):
    kernel = standin.ElementwiseKernel("T x, T y, int32 scale", "T z",
                                       "z = x * (T)scale + y;", "standin_axpy")
    x = rng.normal(size=(2, 3, 4))
    y = rng.normal(size=(1, 3, 1))                # broadcast over axes 0 and 2
    np.testing.assert_array_equal(kernel(x, y, 3), x * 3.0 + y)
    out = np.zeros((4, 3, 2)).transpose(2, 1, 0)  # a non-contiguous output, written in place
    assert kernel(x, y, 3, out) is out
    np.testing.assert_array_equal(out, x * 3.0 + y)
    compiled = len(standin.compiler.loaded)
    kernel(x.astype(np.float32), y.astype(np.float32), 2)
    kernel(x.astype(np.float32), y.astype(np.float32), 5)
    assert len(standin.compiler.loaded) == compiled + 1, "one compile per type, not per call"


def test_standin_index_i_and_raw_indexing_follow_c_order(standin):
    # reverse each row of a raw (2, 5) input by hand: i is the flat C-order output index
    kernel = standin.ElementwiseKernel("raw T x, int32 width", "T y",
                                       "y = x[i / width * width + (width - 1 - i % width)];",
                                       "standin_reverse_rows")
    x = np.arange(10.0).reshape(2, 5)
    np.testing.assert_array_equal(kernel(x, 5, np.empty((2, 5))), x[:, ::-1])
    np.testing.assert_array_equal(kernel(x.T.copy().T, 5, size=10).reshape(2, 5), x[:, ::-1])


def test_standin_reports_out_of_bounds_raw_indices(standin):
    kernel = standin.ElementwiseKernel("raw T x", "T y", "y = x[i + 1];", "standin_shift")
    with pytest.raises(IndexError,
                       match=r"standin_shift: element i=3 .* 'x' at 4, outside \[0, 4\)"):
        kernel(np.zeros(4), np.empty(4))


def test_standin_refuses_mismatched_placeholder_types(standin):
    kernel = standin.ElementwiseKernel("T x, T y", "T z", "z = x + y;", "standin_add")
    with pytest.raises(TypeError, match="standin_add: parameter 'y' got a float32 array"):
        kernel(np.zeros(3), np.zeros(3, np.float32))
    with pytest.raises(TypeError, match="expected int32"):
        standin.ElementwiseKernel("raw int32 x", "T y", "y = x[i];", "standin_copy")(
            np.zeros(3, np.int64), np.empty(3))


def test_standin_shows_unwritten_outputs_as_nan(standin):
    kernel = standin.ElementwiseKernel("T x", "T y", "if (i % 2 == 0) y = x;", "standin_half")
    result = kernel(np.ones(6))
    np.testing.assert_array_equal(np.isnan(result), [False, True] * 3)


def test_standin_reports_compile_errors_with_the_compiler_message(standin):
    kernel = standin.ElementwiseKernel("T x", "T y", "y = undeclared_name;", "standin_broken")
    with pytest.raises(KernelCompileError,
                       match="(?s)standin_broken does not compile.*undeclared_name"):
        kernel(np.ones(2))


def test_standin_reduction_folds_the_reduced_axes(standin, rng):
    kernel = standin.ReductionKernel("T x, T weight", "T total", "x * x * weight", "a + b",
                                     "total = a * 2", "0", "standin_sum_squares")
    x = rng.normal(size=(3, 4, 5))
    weight = rng.normal(size=(1, 4, 1))
    expected = 2 * (x * x * weight).sum(axis=(0, 2))
    np.testing.assert_allclose(kernel(x, weight, axis=(0, 2)), expected, rtol=1e-13)
    np.testing.assert_allclose(kernel(x, weight, axis=1, keepdims=True),
                               2 * (x * x * weight).sum(axis=1, keepdims=True), rtol=1e-13)


# --------------------------------------------------------------------------- module shape
def test_module_defines_every_kernel_name_with_the_reference_signatures(kernel_module):
    assert kernel_module.xp is sys.modules["cupy"] and kernel_module.name == "cupy"
    for name in KERNEL_NAMES:
        assert hasattr(kernel_module, name), f"cupy_kernels lacks {name}"
        function = getattr(reference, name)
        if callable(function):
            assert inspect.signature(getattr(kernel_module, name)) == \
                inspect.signature(function), f"{name}: signature differs from numpy_kernels"


def test_every_kernel_is_found(kernel_module):
    # the AST scan that parametrizes the compile test below misses none the import built
    built = kernel_module.xp.kernels
    assert [getattr(kernel_module, name) for name in KERNEL_VARIABLES] == built
    assert len({kernel.name for kernel in built}) == len(built), "kernel names are not unique"


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("variable", KERNEL_VARIABLES)
def test_kernel_compiles(variable, dtype, gpu):
    kernel = getattr(gpu, variable)
    # every T bound to dtype, every argument an array: the body sees the same names and
    # types when an argument comes as a scalar
    placeholders = {p.placeholder for p in kernel.parameters if p.placeholder}
    kernel.compile({letter: np.dtype(dtype) for letter in placeholders},
                   ["array"] * len(kernel.parameters))


# --------------------------------------------------------------------------- im2col / col2im
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("x_shape, case", CONV_CASES, ids=case_id)
def test_im2col(x_shape, case, dtype, gpu, rng):
    x = rng.normal(size=x_shape).astype(dtype)
    expected = reference.im2col(x, *case)
    assert_kernel_matches(gpu.im2col(x, *case), expected, f"im2col {x_shape} {case}", exact=True)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("x_shape, case", CONV_CASES, ids=case_id)
def test_col2im(x_shape, case, dtype, gpu, rng):
    kernel_size, stride, padding, dilation = case
    out_h, out_w = conv_output_hw(*x_shape[2:], kernel_size, stride, padding, dilation)
    rows = x_shape[1] * kernel_size[0] * kernel_size[1]
    cols = rng.normal(size=(rows, x_shape[0] * out_h * out_w)).astype(dtype)
    expected = reference.col2im(cols, x_shape, *case)
    assert_kernel_matches(gpu.col2im(cols, x_shape, *case), expected, f"col2im {x_shape} {case}")


@pytest.mark.parametrize("dtype", DTYPES)
def test_im2col_and_col2im_of_strided_views(dtype, gpu, rng):
    # transposed views are not C-contiguous: the wrappers must index by shape, not by memory
    x = rng.normal(size=(2, 3, 8, 9)).astype(dtype).transpose(0, 1, 3, 2)
    geometry = ((3, 3), (2, 1), (1, 1), (1, 2))
    assert_kernel_matches(gpu.im2col(x, *geometry), reference.im2col(x, *geometry),
                          "im2col of a transposed view", exact=True)
    cols = reference.im2col(x, *geometry)
    cols_view = np.ascontiguousarray(cols.T).T
    assert_kernel_matches(gpu.col2im(cols_view, x.shape, *geometry),
                          reference.col2im(cols, x.shape, *geometry), "col2im of a transposed view")


# --------------------------------------------------------------------------- conv2d
def _conv_inputs(x_shape, kernel_size, dtype, rng):
    x = rng.standard_normal(x_shape).astype(dtype)
    weight = rng.standard_normal((4, x_shape[1], *kernel_size)).astype(dtype)
    return x, weight


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("x_shape, case", CONV_CASES, ids=case_id)
def test_conv2d_forward(x_shape, case, dtype, gpu, rng):
    kernel_size, stride, padding, dilation = case
    x, weight = _conv_inputs(x_shape, kernel_size, dtype, rng)
    expected = reference.conv2d_forward(x, weight, stride, padding, dilation)
    assert_kernel_matches(gpu.conv2d_forward(x, weight, stride, padding, dilation), expected,
                          f"conv2d_forward {x_shape} {case}")


@pytest.mark.parametrize("need_input, need_weight", NEEDS, ids=["dx-dw", "dx", "dw"])
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("x_shape, case", CONV_CASES, ids=case_id)
def test_conv2d_backward(x_shape, case, dtype, need_input, need_weight, gpu, rng):
    kernel_size, stride, padding, dilation = case
    x, weight = _conv_inputs(x_shape, kernel_size, dtype, rng)
    out_hw = conv_output_hw(*x_shape[2:], kernel_size, stride, padding, dilation)
    grad_output = rng.standard_normal((x_shape[0], weight.shape[0], *out_hw)).astype(dtype)
    arguments = (grad_output, x, weight, stride, padding, dilation, need_input, need_weight)
    actual = gpu.conv2d_backward(*arguments)
    expected = reference.conv2d_backward(*arguments)
    for label, got, want in zip(("dx", "dweight"), actual, expected):
        if want is None:
            assert got is None, f"conv2d_backward {label}: returned an array, expected None"
        else:
            assert_kernel_matches(got, want, f"conv2d_backward {label} {x_shape} {case}")


def test_conv2d_backward_needing_nothing_returns_nothing(gpu, rng):
    x, weight = _conv_inputs((1, 2, 5, 5), (3, 3), np.float64, rng)
    grad_output = rng.standard_normal((1, 4, 3, 3))
    assert gpu.conv2d_backward(grad_output, x, weight, (1, 1), (0, 0), (1, 1),
                               need_input=False, need_weight=False) == (None, None)


# --------------------------------------------------------------------------- pooling
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("x_shape, case", POOL_CASES, ids=case_id)
def test_max_pool2d_forward_and_backward(x_shape, case, dtype, gpu, rng):
    # small integers make many ties, so "argmax is the FIRST maximum" is really tested
    x = rng.integers(-3, 4, size=x_shape).astype(dtype)
    expected_out, expected_argmax = reference.max_pool2d_forward(x, *case)
    out, argmax = gpu.max_pool2d_forward(x, *case)
    assert_kernel_matches(out, expected_out, f"max_pool2d out {x_shape} {case}", exact=True)
    assert_kernel_matches(argmax, expected_argmax, f"max_pool2d argmax {x_shape} {case}",
                          exact=True)
    grad_output = rng.normal(size=expected_out.shape).astype(dtype)
    expected = reference.max_pool2d_backward(grad_output, expected_argmax, x_shape, *case)
    assert_kernel_matches(gpu.max_pool2d_backward(grad_output, expected_argmax, x_shape, *case),
                          expected, f"max_pool2d_backward {x_shape} {case}")


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("x_shape, case", [c for c in POOL_CASES if max(c[1][2]) > 0],
                         ids=case_id)
def test_max_pool2d_negative_inputs_beat_padding(x_shape, case, dtype, gpu, rng):
    # every value is negative, so a zero (rather than -inf) padding would win border windows
    x = -rng.uniform(1, 2, size=x_shape).astype(dtype)
    expected_out, expected_argmax = reference.max_pool2d_forward(x, *case)
    out, argmax = gpu.max_pool2d_forward(x, *case)
    what = f"max_pool2d, negative {x_shape} {case}"
    assert_kernel_matches(out, expected_out, f"{what} out", exact=True)
    assert_kernel_matches(argmax, expected_argmax, f"{what} argmax", exact=True)
    assert (out < 0).all(), "a padded zero won a window"
    grad_output = rng.normal(size=out.shape).astype(dtype)
    expected = reference.max_pool2d_backward(grad_output, expected_argmax, x_shape, *case)
    assert_kernel_matches(gpu.max_pool2d_backward(grad_output, argmax, x_shape, *case), expected,
                          f"{what} backward")


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("x_shape, case", POOL_CASES, ids=case_id)
def test_avg_pool2d_forward_and_backward(x_shape, case, dtype, gpu, rng):
    x = rng.normal(size=x_shape).astype(dtype)
    expected_out = reference.avg_pool2d_forward(x, *case)
    assert_kernel_matches(gpu.avg_pool2d_forward(x, *case), expected_out,
                          f"avg_pool2d_forward {x_shape} {case}")
    grad_output = rng.normal(size=expected_out.shape).astype(dtype)
    assert_kernel_matches(gpu.avg_pool2d_backward(grad_output, x_shape, *case),
                          reference.avg_pool2d_backward(grad_output, x_shape, *case),
                          f"avg_pool2d_backward {x_shape} {case}")


# --------------------------------------------------------------------------- batch norm
def _batch_norm_inputs(shape, dtype, rng):
    # an offset mean and a non-unit spread, so centring and scaling both matter
    x = rng.normal(loc=3.0, scale=2.0, size=shape).astype(dtype)
    weight = rng.normal(size=shape[1]).astype(dtype)
    bias = rng.normal(size=shape[1]).astype(dtype)
    return x, weight, bias


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", KERNEL_NORM_SHAPES, ids=case_id)
def test_batch_norm_forward_train(shape, dtype, gpu, rng):
    x, weight, bias = _batch_norm_inputs(shape, dtype, rng)
    expected = reference.batch_norm_forward_train(x, weight, bias, 1e-5)
    actual = gpu.batch_norm_forward_train(x, weight, bias, 1e-5)
    for label, got, want in zip(("y", "mean", "var", "inv_std"), actual, expected):
        assert_kernel_matches(got, want, f"batch_norm_forward_train {label} {shape}")


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", KERNEL_NORM_SHAPES, ids=case_id)
def test_batch_norm_backward(shape, dtype, gpu, rng):
    x, weight, bias = _batch_norm_inputs(shape, dtype, rng)
    _, mean, _, inv_std = reference.batch_norm_forward_train(x, weight, bias, 1e-5)
    grad_output = rng.normal(size=shape).astype(dtype)
    expected = reference.batch_norm_backward(grad_output, x, mean, inv_std, weight)
    actual = gpu.batch_norm_backward(grad_output, x, mean, inv_std, weight)
    for label, got, want in zip(("dx", "dweight", "dbias"), actual, expected):
        assert_kernel_matches(got, want, f"batch_norm_backward {label} {shape}")


# --------------------------------------------------------------------------- relu
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", KERNEL_RELU_SHAPES, ids=case_id)
def test_relu_forward_and_backward(shape, dtype, gpu, rng):
    x = np.asarray(rng.normal(size=shape), dtype=dtype)
    flat = x.reshape(-1)              # a view: edits below reach x
    flat[::5] = 0.0                   # exact zeros: relu'(0) is 0, as the reference
    flat[1::7] = np.nan               # NaN passes forward, and lets the gradient through
    grad_output = np.asarray(rng.normal(size=shape), dtype=dtype)
    out = reference.relu_forward(x)
    assert np.isnan(out.reshape(-1)[1::7]).all()
    assert_kernel_matches(gpu.relu_forward(x), out, f"relu_forward {shape}", exact=True)
    expected = reference.relu_backward(grad_output, out)
    np.testing.assert_array_equal(expected.reshape(-1)[1::7], grad_output.reshape(-1)[1::7])
    assert_kernel_matches(gpu.relu_backward(grad_output, out), expected, f"relu_backward {shape}",
                          exact=True)


@pytest.mark.parametrize("dtype", DTYPES)
def test_relu_of_a_strided_view(dtype, gpu, rng):
    x = rng.normal(size=(3, 4, 5)).astype(dtype).transpose(2, 0, 1)
    assert_kernel_matches(gpu.relu_forward(x), reference.relu_forward(x),
                          "relu_forward of a transposed view", exact=True)
