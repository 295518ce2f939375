"""Let the API reference read tinyres's docstrings, which are written for humans and Sphinx alike.

The docstrings use a few reStructuredText habits that Markdown does not know:

* roles such as ``:func:`tinyres.gradcheck``` or ``:class:`~tinyres.autograd.Function``` --
  shown here as code, the ``~`` form by its last name only;
* ``Example::`` before a literal block -- the second colon is dropped;
* plain-text equations such as ``Ho = (H + 2*ph - 1) // sh + 1``, where Markdown would read
  the asterisks as emphasis -- they are escaped outside code;
* lines that start a new statement -- ``input: (N, C, H, W) -> ...`` or ``Ho = ...`` -- would
  be run into the line before; they keep their own line.
"""
import re

import griffe

ROLE = re.compile(r":(?:py:)?(?:func|class|meth|mod|attr|data|exc|obj|const):`(~?)([^`]+)`")
CODE_SPAN = re.compile(r"(``?[^`]*``?)")
OWN_LINE = re.compile(r"^\s*(?:[A-Za-z_][\w, ]*:\s|[A-Za-z_]\w* = )")   # "x: ...", "Ho = ..."


def _role_to_code(match):
    short, target = match.group(1), match.group(2)
    return f"`{target.rsplit('.', 1)[-1] if short else target}`"


def _escape_asterisks(line):
    parts = CODE_SPAN.split(line)
    return "".join(part if part.startswith("`") else part.replace("*", r"\*") for part in parts)


def to_markdown(text):
    """The docstring ``text`` with roles, literal-block markers and stray asterisks made Markdown."""
    lines, in_code, previous_blank = [], False, True
    for line in text.splitlines():
        blank = not line.strip()
        indented = line.startswith("    ")
        if indented and previous_blank:
            in_code = True
        elif not blank and not indented:
            in_code = False
        if not in_code:
            if lines and not previous_blank and OWN_LINE.match(line):
                lines[-1] += "  "          # a Markdown line break
            line = ROLE.sub(_role_to_code, line)
            if line.rstrip().endswith("::"):
                line = line.rstrip()[:-1]
            stripped = line.lstrip()
            bullet = stripped.startswith("* ")
            body = _escape_asterisks(stripped[2:] if bullet else stripped)
            line = line[:len(line) - len(stripped)] + ("* " if bullet else "") + body
        lines.append(line)
        previous_blank = blank
    return "\n".join(lines)


class RestructuredRoles(griffe.Extension):
    """Rewrite every docstring with :func:`to_markdown` once the objects are loaded."""

    def on_object(self, *, obj, **kwargs):
        if not obj.is_alias and obj.docstring is not None:
            obj.docstring.value = to_markdown(obj.docstring.value)
