"""The command-line reference, written from the ``tinyres`` command's own argparse parsers.

:func:`cli_markdown` walks :func:`tinyres.cli.build_parser` when the site is built, so the
page lists every subcommand and every flag the command has at that moment, in the words
of its ``--help``, and cannot fall behind it.
"""
import argparse
import html

USAGE_WIDTH = 88              # columns of the usage lines, the width of the site's code
MARKDOWN_SPECIAL = "\\`*_[]|"


def _escape(text):
    """``text`` as literal Markdown: HTML's special characters and Markdown's markup escaped."""
    text = html.escape(text, quote=False)
    return "".join("\\" + char if char in MARKDOWN_SPECIAL else char for char in text)


def _subcommands(parser):
    """``[(name, parser, one-line help)]`` of the subcommands of ``parser``, in their order."""
    found = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            helps = {choice.dest: choice.help for choice in action._choices_actions}
            found += [(name, sub, helps.get(name) or "") for name, sub in action.choices.items()]
    return found


def help_text(action, prog):
    """The help of ``action`` with ``%(default)s`` and its kin filled in, as argparse prints it."""
    if not action.help:
        return ""
    values = {key: value for key, value in vars(action).items() if value is not argparse.SUPPRESS}
    values["prog"] = prog
    if values.get("choices") is not None:
        values["choices"] = ", ".join(str(choice) for choice in values["choices"])
    for key, value in list(values.items()):
        if hasattr(value, "__name__"):
            values[key] = value.__name__
    return action.help % values


def invocation(action):
    """How ``action`` is written on the command line: ``--epochs EPOCHS``, ``-h, --help``."""
    if action.nargs == 0:
        return ", ".join(action.option_strings)
    if action.metavar is not None:
        metavar = action.metavar
    elif action.choices is not None:
        metavar = "{" + ",".join(str(choice) for choice in action.choices) + "}"
    else:
        metavar = action.dest.upper() if action.option_strings else action.dest
    if action.nargs == "+":
        metavar = f"{metavar} [{metavar} ...]"
    elif action.nargs == "*":
        metavar = f"[{metavar} ...]"
    elif action.nargs == "?":
        metavar = f"[{metavar}]"
    elif isinstance(action.nargs, int):
        metavar = " ".join([metavar] * action.nargs)
    if not action.option_strings:
        return metavar
    return ", ".join(f"{option} {metavar}" for option in action.option_strings)


def _anchor(prog):
    return prog.replace(" ", "-")


def _command_section(parser, summary, level):
    """The Markdown of one command: its description, usage and a table per argument group."""
    parser.formatter_class = lambda prog: argparse.HelpFormatter(prog, width=USAGE_WIDTH)
    lines = [f"{'#' * level} `{parser.prog}` {{#{_anchor(parser.prog)}}}", ""]
    description = parser.description or summary
    if description:
        lines += [_escape(description), ""]
    lines += ["```text", parser.format_usage().strip(), "```", ""]
    for group in parser._action_groups:
        actions = [action for action in group._group_actions
                   if not isinstance(action, argparse._SubParsersAction)]
        if not actions:
            continue
        title = group.title or "arguments"
        lines += [f"**{_escape(title)}**", "", "| argument | what it does |", "| --- | --- |"]
        for action in actions:
            lines.append(f"| `{invocation(action)}` | {_escape(help_text(action, parser.prog))} |")
        lines.append("")
    for _, sub, sub_summary in _subcommands(parser):   # nested ones stay at level 3
        lines += _command_section(sub, sub_summary, min(level + 1, 3))
    return lines


def command_index(parser):
    """``[(full command, one-line help)]`` for every subcommand, nested ones included."""
    rows = []
    for _, sub, summary in _subcommands(parser):
        rows.append((sub.prog, summary))
        rows += command_index(sub)
    return rows


def cli_markdown(parser=None):
    """The whole command-line page as Markdown (``parser`` defaults to the ``tinyres`` command's)."""
    if parser is None:
        from tinyres.cli import build_parser
        parser = build_parser()
    lines = ["# Command line", "",
             f"Every subcommand of `{parser.prog}` and every flag, as `{parser.prog} COMMAND "
             "--help` prints them. This page is written from the command's own argument "
             "parsers (`tinyres.cli.build_parser()`) each time the site is built.", "",
             "| command | what it does |", "| --- | --- |"]
    for prog, summary in command_index(parser):
        lines.append(f"| [`{prog}`](#{_anchor(prog)}) | {_escape(summary)} |")
    lines.append("")
    lines += _command_section(parser, "", 2)
    return "\n".join(lines) + "\n"
