"""Build hooks of the documentation site (see ``hooks:`` in mkdocs.yml).

Everything the site shows beyond its Markdown pages is made here, while it is built, so
none of it can go stale:

* the lessons of ``notebooks/`` (which live at the top of the repository, where Jupyter
  users find them), executed by :mod:`site_lessons` and added as the pages
  ``notebooks/<name>.ipynb`` before the mkdocs-jupyter plugin turns notebooks into pages;
  each page opens with a box that links the committed notebook (``downloads/<name>.ipynb``)
  and says how to run it;
* MathJax, copied from the ``django-static-mathjax`` package of the ``docs`` extra into
  ``assets/mathjax/``, so that no page loads a script from another site and the formulas
  render offline;
* the command-line page ``cli.md``, written from the command's parsers by :mod:`site_cli`;
* the concept pages' pictures ``figures/drawn/<name>.png``, drawn by :mod:`site_figures`.

A lesson links to the next one as ``02_im2col_convolution.ipynb`` (right inside Jupyter);
on the site every lesson is its own page, so :func:`on_post_page` rewrites those links.
"""
import importlib.util
import pathlib
import re
import sys

from mkdocs.plugins import event_priority
from mkdocs.structure.files import File

DOCS = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(DOCS))          # the site_* modules beside this file

import site_cli  # noqa: E402
import site_figures  # noqa: E402
import site_lessons  # noqa: E402

ROOT = DOCS.parent
NOTEBOOKS = ROOT / "notebooks"
LESSON_LINK = re.compile(r'href="(\d\d_[a-z0-9_]+)\.ipynb"')
MATHJAX_DEST = "assets/mathjax"
# MathJax's combined TeX + MathML -> HTML component, and every folder it loads from on demand
MATHJAX_FILES = ("tex-mml-chtml.js", "a11y", "adaptors", "input", "output/chtml", "sre", "ui")
# What nbconvert's page template adds that this site does not want: a second MathJax (its
# version 2 configuration and an empty script tag) and Mermaid, imported from a CDN.
NOTEBOOK_SCRIPTS = (re.compile(r'<!-- Load mathjax -->\s*<script src="">\s*</script>'),
                    re.compile(r'<!-- MathJax configuration -->\s*'
                               r'<script type="text/x-mathjax-config">.*?</script>', re.S),
                    re.compile(r'<script type="module">(?:(?!</script>).)*?mermaid.*?</script>',
                               re.S))

_lessons = {}                          # "notebooks/<name>.ipynb" -> ExecutedLesson


def mathjax_folder():
    """Where the ``docs`` extra installed MathJax's ``es5`` build."""
    spec = importlib.util.find_spec("mathjax")
    folder = spec and pathlib.Path(list(spec.submodule_search_locations)[0]) / "static" / "mathjax"
    if folder is None or not (folder / "es5" / MATHJAX_FILES[0]).is_file():
        raise FileNotFoundError("MathJax is missing: install the docs extra "
                                "(pip install -e '.[docs]'; make docs does)")
    return folder


def _mathjax_files(config):
    folder = mathjax_folder()
    sources = [folder / "LICENSE"]
    for name in MATHJAX_FILES:
        path = folder / "es5" / name
        sources += [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
    for source in sources:
        relative = source.relative_to(folder / "es5") if source.name != "LICENSE" else "LICENSE"
        yield File.generated(config, f"{MATHJAX_DEST}/{relative}", abs_src_path=str(source))


@event_priority(100)  # before mkdocs-jupyter looks for notebooks
def on_files(files, config):
    _lessons.clear()
    for notebook in sorted(NOTEBOOKS.glob("*.ipynb")):
        lesson = site_lessons.executed(notebook)
        uri = f"notebooks/{notebook.name}"
        _lessons[uri] = lesson
        # the page is made from the executed copy, which lies at cache/notebooks/<name>
        files.append(File(uri, src_dir=str(lesson.rendered.parents[1]),
                          dest_dir=config["site_dir"],
                          use_directory_urls=config["use_directory_urls"]))
        # the committed notebook to download; held in memory, so mkdocs-jupyter leaves it be
        files.append(File.generated(config, f"downloads/{notebook.name}",
                                    content=notebook.read_bytes()))
    for file in _mathjax_files(config):
        files.append(file)
    files.append(File.generated(config, "cli.md", content=site_cli.cli_markdown()))
    for name in site_figures.FIGURES:
        files.append(File.generated(config, f"figures/drawn/{name}.png",
                                    content=site_figures.png(name)))
    return files


def on_page_content(html, page, config, files):
    lesson = _lessons.get(page.file.src_uri)
    if lesson is None:
        return html
    for pattern in NOTEBOOK_SCRIPTS:
        html = pattern.sub("", html)
    download = files.get_file_from_path(f"downloads/{lesson.source.name}")
    box = site_lessons.banner(lesson, download.url_relative_to(page.file))
    title_end = html.find("</h1>")     # right under the lesson's title
    if title_end < 0:
        return box + html
    title_end += len("</h1>")
    return html[:title_end] + box + html[title_end:]


def on_post_page(output, page, config):
    if not page.file.src_uri.startswith("notebooks/"):
        return output
    prefix = "../" if config["use_directory_urls"] else ""
    suffix = "/" if config["use_directory_urls"] else ".html"
    return LESSON_LINK.sub(lambda match: f'href="{prefix}{match.group(1)}{suffix}"', output)
