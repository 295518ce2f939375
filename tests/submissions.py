"""Student submissions for the course tests: the reference, typical bugs, and a faked answer.

Each answer is the body of a ``<name>_backward(grad_output, cache)`` function, as a
student would type it into the exercise cell; :func:`filled_in` puts bodies into a
notebook's exercise cells (tag ``exercise-<name>``, stub lines ``# YOUR CODE HERE`` and
``raise NotImplementedError``), :func:`as_module` writes them as a ``.py`` file.
"""
import pathlib
import textwrap

import nbformat

from tinyres.lessons.course import load_course

COURSE_FOLDER = pathlib.Path(__file__).resolve().parents[1] / "course"
SIGNATURE = "def {name}_backward(grad_output, cache):"

# Max pooling with ``a[idx] += v``: a pixel that wins several windows gets one gradient.
MAX_POOL_REPEATED_INDEX = """\
x, argmax = cache["x"], cache["argmax"]
(_, kernel_w), (sh, sw), (ph, pw) = cache["kernel_size"], cache["stride"], cache["padding"]
n, c, ho, wo = np.indices(grad_output.shape)
padded = np.zeros((x.shape[0], x.shape[1], x.shape[2] + 2 * ph, x.shape[3] + 2 * pw))
padded[n, c, ho * sh + argmax // kernel_w, wo * sw + argmax % kernel_w] += grad_output
return padded[:, :, ph:ph + x.shape[2], pw:pw + x.shape[3]]"""

# ReLU's gradient computed by tinyres's own autograd: must be refused.
RELU_BY_TINYRES = """\
import tinyres as tr
import tinyres.functional as F
x = tr.tensor(cache["x"], requires_grad=True)
F.relu(x).backward(grad_output)
return x.grad.numpy()"""

# Batch norm by the backend's own backward kernel: must be refused too.
BATCH_NORM_BY_KERNEL = """\
from tinyres.backend import numpy_kernels
return numpy_kernels.batch_norm_backward(grad_output, cache["x"], cache["mean"],
                                         cache["inv_std"], cache["weight"])"""


def course():
    return load_course(COURSE_FOLDER)


def reference_bodies():
    """Exercise name -> the reference answer's body."""
    loaded = course()
    return {name: loaded.solution_body(name) for name in loaded.solutions}


def filled_in(notebook, bodies):
    """``notebook`` with the stub of each exercise in ``bodies`` replaced by that body."""
    for cell in notebook.cells:
        for tag in cell.metadata.get("tags", []):
            name = tag[len("exercise-"):]
            if tag.startswith("exercise-") and name in bodies:
                stub = "    # YOUR CODE HERE\n    raise NotImplementedError"
                assert stub in cell.source, cell.source
                cell.source = cell.source.replace(stub, textwrap.indent(bodies[name], "    "))
    return notebook


def write_notebook(source_path, destination, bodies):
    """Copy the notebook at ``source_path`` to ``destination`` with ``bodies`` filled in."""
    notebook = filled_in(nbformat.read(str(source_path), as_version=4), bodies)
    destination = pathlib.Path(destination)
    destination.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(notebook, str(destination))
    return destination


def as_module(path, bodies, preamble="import numpy as np\n"
                                     "from tinyres.backend.numpy_kernels import col2im\n"):
    """Write ``bodies`` as the functions of a ``.py`` submission at ``path``."""
    functions = [SIGNATURE.format(name=name) + "\n" + textwrap.indent(body, "    ")
                 for name, body in bodies.items()]
    path = pathlib.Path(path)
    path.write_text(preamble + "\n\n" + "\n\n\n".join(functions) + "\n")
    return path


def as_function(name, body):
    """``body`` as a live ``<name>_backward`` function, with ``np`` and ``col2im`` in scope."""
    import numpy as np
    from tinyres.backend.numpy_kernels import col2im

    namespace = {"np": np, "col2im": col2im}
    exec(SIGNATURE.format(name=name) + "\n" + textwrap.indent(body, "    "), namespace)
    return namespace[f"{name}_backward"]
