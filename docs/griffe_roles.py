"""Let the API reference read tinyres's docstrings, which are written for humans and Sphinx alike.

The docstrings use a few reStructuredText habits that Markdown does not know:

* roles such as ``:func:`tinyres.gradcheck``` or ``:class:`~tinyres.autograd.Function``` --
  shown here as code, the ``~`` form by its last name only;
* ``Example::`` before a literal block -- the second colon is dropped;
* plain-text equations such as ``Ho = (H + 2*ph - 1) // sh + 1``, where Markdown would read
  the asterisks as emphasis -- they are escaped outside code;
* lines that start a new statement -- ``input: (N, C, H, W) -> ...`` or ``Ho = ...`` -- would
  be run into the line before; they keep their own line.

It also gives every documented function and class the sections the Google style renders as
tables (mkdocs.yml sets ``docstring_style: google``), read off the signature and off the
plain lines the docstrings already have, so no docstring needs rewriting:

* **Args** -- every parameter of the signature (a class: of its ``__init__``), with its
  default, described by the docstring's own ``name: ...`` line where it has one, such as
  ``input: (N, C, H, W), weight: (K, C, R, S), bias: (K,) or None -> (N, K, Ho, Wo)``;
* **Returns** -- the docstring's sentence that starts with "Returns", else what follows
  the ``->`` of its shape line;
* the fields of a class (a dataclass's, say) are documented by the class docstring's
  ``name: ...`` line or by the comment beside the field.
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


# "name: ..." or "name, other: ..." at the start of a line or after ", " / "; " / ".  "
NAMES_COLON = re.compile(r"(?:^|(?<=[,;.] )|(?<=[,;.]  ))([A-Za-z_]\w*(?:, [A-Za-z_]\w*)*): ")
LINE_START = re.compile(r"^[A-Za-z_]\w*(?:, [A-Za-z_]\w*)*: ")
RETURNS_SENTENCE = re.compile(r"(?:^|(?<=\s))Returns? (.+)", re.S)
SECTION_TITLE = re.compile(r"^(Args|Arguments|Parameters|Returns|Attributes):\s*$", re.M)
FIELD_COMMENT = re.compile(r"#\s*(.+?)\s*$")


def _paragraphs(text):
    """The docstring's statements outside code blocks, each joined into one line.

    A statement ends at a blank line, at a code block, or where the next line starts a new
    ``name: ...`` line.
    """
    statements, current = [], []
    for line in text.splitlines() + [""]:
        starts_anew = bool(LINE_START.match(line))
        if not line.strip() or line.startswith("    ") or starts_anew:
            if current:
                statements.append(" ".join(current))
            current = [line.strip()] if starts_anew else []
        else:
            current.append(line.strip())
    return statements


def first_statement(text):
    """``text`` up to the end of its first sentence: a full stop, outside brackets and code,
    followed by a capital letter or by nothing (so "e.g." and "..." do not end it)."""
    depth, code = 0, False
    for index, char in enumerate(text):
        if char == "`":
            code = not code
        elif code:
            continue
        elif char in "([{":
            depth += 1
        elif char in ")]}":
            depth = max(0, depth - 1)
        elif char == "." and depth == 0:
            rest = text[index + 1:]
            if not rest.strip() or (rest[:1] == " " and rest.lstrip()[:1].isupper()):
                return text[:index + 1]
    return text


def described_names(text, names):
    """``{name: description}`` from the plain lines of ``text`` that describe any of ``names``.

    ``x: (N, C, H, W), weight, bias: (C,) -> y: ...`` gives x "(N, C, H, W)", weight and
    bias "(C,)"; what follows ``->`` describes the result, not a parameter.
    """
    found = {}
    for paragraph in _paragraphs(text):
        inputs = paragraph.split(" -> ")[0]
        matches = [match for match in NAMES_COLON.finditer(inputs)
                   if all(name in names for name in match.group(1).split(", "))]
        if not matches or matches[0].start() != 0:
            continue
        for match, following in zip(matches, matches[1:] + [None]):
            end = following.start() if following else len(inputs)
            description = first_statement(inputs[match.end():end].strip().rstrip(",;").strip())
            for name in match.group(1).split(", "):
                found.setdefault(name, description)
    return found


def returned(text):
    """What the docstring says its function returns: a "Returns ..." sentence or a "-> ..." shape."""
    for paragraph in _paragraphs(text):
        match = RETURNS_SENTENCE.search(paragraph)
        if match:
            return first_statement(match.group(1))
    for paragraph in _paragraphs(text):
        if " -> " in paragraph and NAMES_COLON.match(paragraph):
            return paragraph.split(" -> ", 1)[1]
    return None


def _parameters(obj):
    """The parameters a reader passes: the signature's, or a class's ``__init__``'s, without self."""
    try:
        parameters = list(obj.parameters)
    except Exception:      # a class whose __init__ griffe cannot see (an unresolved base)
        return []
    return [parameter for parameter in parameters if parameter.name not in ("self", "cls")]


def _field_comments(cls):
    """``{field: the comment beside it}`` for the attributes of class ``cls``."""
    comments = {}
    for member in cls.members.values():
        if member.is_alias or not member.is_attribute or member.lineno is None or not cls.filepath:
            continue
        match = FIELD_COMMENT.search(cls.lines_collection[cls.filepath][member.lineno - 1])
        if match:
            comments[member.name] = match.group(1)
    return comments


def _without_paragraphs_on(text, names):
    """``text`` less the paragraphs that only describe ``names`` (they became a table)."""
    kept = []
    for block in re.split(r"\n\s*\n", text):
        joined = " ".join(line.strip() for line in block.splitlines())
        described = described_names(joined, names)
        match = NAMES_COLON.match(joined)
        if described and match and all(name in names for name in match.group(1).split(", ")):
            continue
        kept.append(block)
    return "\n\n".join(kept)


def with_sections(obj, text):
    """``text`` with Google-style Args and Returns sections appended, for ``obj``.

    A dataclass's field lines move into the table (it lists exactly its fields).
    """
    if SECTION_TITLE.search(text):       # written by hand: leave it alone
        return text
    parameters = _parameters(obj) if (obj.is_function or obj.is_class) else []
    if obj.is_function and "property" in obj.labels:
        parameters = []
    names = {parameter.name for parameter in parameters}
    own_text = text
    if obj.is_class and "__init__" in obj.members and obj.members["__init__"].docstring:
        own_text += "\n\n" + to_markdown(obj.members["__init__"].docstring.value)
    described = described_names(own_text, names)
    if obj.is_class:
        described = {**{name: to_markdown(comment) for name, comment in _field_comments(obj).items()},
                     **described}
        if "dataclass" in obj.labels:
            text = _without_paragraphs_on(text, names)
    sections = []
    if parameters:
        sections.append("Args:")
        for parameter in parameters:
            sections.append(f"    {parameter.name}: {described.get(parameter.name, '')}".rstrip())
    if obj.is_function and obj.name != "__init__" and "property" not in obj.labels:
        result = returned(text)
        if result:
            sections += ["", "Returns:", f"    {result}"]     # a section title needs a blank line above
    return text + ("\n\n" + "\n".join(sections) if sections else "")


def _document_members(cls):
    """Give the undocumented attributes and properties of ``cls`` a docstring from its
    ``name: ...`` line or the comment beside them.  A dataclass's fields are left to its
    table (see :func:`with_sections`); its properties are not fields, so they get one."""
    dataclass = "dataclass" in cls.labels
    members = [member for member in cls.members.values()
               if not member.is_alias and member.docstring is None
               and ((member.is_attribute and not dataclass)
                    or (member.is_function and "property" in member.labels))]
    if not members:
        return
    described = {**_field_comments(cls),
                 **described_names(cls.docstring.value if cls.docstring else "",
                                   {member.name for member in members})}
    parser = cls.docstring.parser if cls.docstring else None
    options = cls.docstring.parser_options if cls.docstring else {}
    for member in members:
        if described.get(member.name):
            # the member's own on_object, which comes next, makes it Markdown
            member.docstring = griffe.Docstring(described[member.name], parent=member,
                                                parser=parser, parser_options=options)


class RestructuredRoles(griffe.Extension):
    """Rewrite every docstring with :func:`to_markdown`, then add its Args/Returns sections."""

    def on_object(self, *, obj, **kwargs):
        if obj.is_alias:
            return
        if obj.is_class:
            _document_members(obj)
        if obj.docstring is None:
            return
        text = to_markdown(obj.docstring.value)
        if not obj.is_attribute and not (obj.is_function and obj.name == "__init__"):
            text = with_sections(obj, text)      # an __init__'s are merged into its class
        obj.docstring.value = text
