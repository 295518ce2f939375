"""docs/check_site.py finds what it promises to find, on a tiny site made up for each test.

The site has a home page, a page with an anchor, a stylesheet and one lesson page written
as nbconvert writes an executed notebook; each test breaks one thing and expects exactly
the problem that names it.
"""
import importlib.util
import pathlib

import pytest

CHECK_SITE = pathlib.Path(__file__).resolve().parents[1] / "docs" / "check_site.py"
spec = importlib.util.spec_from_file_location("check_site", CHECK_SITE)
check_site = importlib.util.module_from_spec(spec)
spec.loader.exec_module(check_site)

LESSON = "01_demo"
EXECUTED_CELL = """
<div class="jp-Cell jp-MarkdownCell">
  <div class="jp-InputArea"><div class="jp-InputPrompt jp-InputArea-prompt"></div>
    <div class="jp-RenderedMarkdown"><h1 id="lesson">Lesson</h1></div></div>
</div>
<div class="jp-Cell jp-CodeCell">
  <div class="jp-InputArea"><div class="jp-InputPrompt jp-InputArea-prompt">In&nbsp;[{count}]:</div>
    <div class="jp-CodeMirrorEditor"><pre>print(1)</pre></div></div>
  {output}
</div>"""
PLOT = ('<div class="jp-OutputArea"><div class="jp-RenderedImage jp-OutputArea-output">'
        '<img src="data:image/png;base64,iVBORw0KGgo="></div></div>')


def page(body, head=""):
    return f"<!doctype html><html><head>{head}</head><body>{body}</body></html>"


def lesson_page(count="1", output=PLOT, download=f"../downloads/{LESSON}.ipynb"):
    link = f'<a href="{download}">{LESSON}.ipynb</a>' if download else ""
    return page(link + EXECUTED_CELL.format(count=count, output=output))


def build(folder, **lesson):
    """A site that passes every check; ``lesson`` changes the lesson page."""
    files = {
        "index.html": page('<a href="guide.html#usage">guide</a> <a href="https://example.org">'
                           'a site to visit</a> <img src="figures/plot.png">',
                           head='<link rel="stylesheet" href="assets/site.css">'
                                '<script src="assets/mathjax/tex-mml-chtml.js"></script>'),
        "guide.html": page('<h2 id="usage">Usage</h2><a href="index.html">home</a>'),
        "assets/site.css": "body { font-family: sans-serif; }",
        "assets/mathjax/tex-mml-chtml.js": "window.MathJax = {};",
        "figures/plot.png": "png",
        f"downloads/{LESSON}.ipynb": "{}",
        f"notebooks/{LESSON}.html": lesson_page(**lesson),
    }
    for name, text in files.items():
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return folder


def problems(folder):
    return check_site.check_site(folder, [LESSON])


def test_a_sound_site_has_no_problem(tmp_path):
    assert problems(build(tmp_path)) == []
    assert check_site.main([str(tmp_path), "--notebooks", str(tmp_path / "none")]) == 0


@pytest.mark.parametrize("head, what", [
    ('<script src="https://cdn.example.org/mathjax/tex-mml-chtml.js"></script>', "<script> loads"),
    ('<link rel="stylesheet" href="//fonts.example.org/css?family=Roboto">', "<link> loads"),
    ('<link rel="preconnect" href="https://fonts.example.org">', "<link> loads"),
    ('<script type="module">const m = await import("https://cdn.example.org/m.mjs");</script>',
     "an inline script loads code"),
    ('<style>@import url("https://fonts.example.org/a.css");</style>', "an inline style loads"),
])
def test_anything_loaded_from_another_site_is_reported(tmp_path, head, what):
    build(tmp_path)
    (tmp_path / "guide.html").write_text(page('<h2 id="usage">Usage</h2>', head=head))
    found = problems(tmp_path)
    assert len(found) == 1 and found[0].startswith("guide.html: ") and what in found[0], found


def test_a_stylesheet_that_fetches_a_font_is_reported(tmp_path):
    build(tmp_path)
    (tmp_path / "assets/site.css").write_text("@font-face { src: url(https://fonts.example.org/r.woff2); }")
    assert problems(tmp_path) == ["assets/site.css: loads something from another site"]


@pytest.mark.parametrize("link, expected", [
    ('<a href="missing.html">x</a>', "index.html: <a> missing.html -> no such file"),
    ('<a href="guide.html#nowhere">x</a>', "index.html: <a> guide.html#nowhere -> no element with id 'nowhere'"),
    ('<img src="figures/gone.png">', "index.html: <img> figures/gone.png -> no such file"),
    ('<a href="../../etc/passwd">x</a>', "index.html: <a> ../../etc/passwd points outside the site"),
])
def test_dead_links_are_reported(tmp_path, link, expected):
    build(tmp_path)
    (tmp_path / "index.html").write_text(page(link))
    assert problems(tmp_path) == [expected]


def test_a_folder_link_means_its_index_page(tmp_path):
    build(tmp_path)
    (tmp_path / "notebooks" / "index.html").write_text(page("lessons"))
    (tmp_path / "guide.html").write_text(page('<h2 id="usage"></h2><a href="notebooks/">all</a>'))
    assert problems(tmp_path) == []


@pytest.mark.parametrize("lesson, expected", [
    (dict(count="&nbsp;"), "1 of 1 code cells did not run (In [ ]:)"),
    (dict(output=""), "no outputs"),
    (dict(output='<div class="jp-OutputArea-output"><pre>1</pre></div>'), "no plot among the outputs"),
    (dict(download=None), f"does not link {LESSON}.ipynb"),
])
def test_a_lesson_page_without_its_outputs_is_reported(tmp_path, lesson, expected):
    build(tmp_path, **lesson)
    found = problems(tmp_path)
    assert f"notebooks/{LESSON}.html: {expected}" in found, found
    if expected == "no outputs":   # no output at all is also no plot
        assert len(found) == 2
    else:
        assert len(found) == 1


def test_a_missing_lesson_page_is_reported(tmp_path):
    build(tmp_path)
    assert check_site.check_site(tmp_path, [LESSON, "02_other"]) == [
        "notebooks/02_other.html: the lesson page is missing"]


def test_the_command_exits_1_and_lists_the_problems(tmp_path, capsys):
    build(tmp_path)
    (tmp_path / "index.html").write_text(page('<script src="https://cdn.example.org/x.js"></script>'))
    notebooks = tmp_path / "lessons-source"
    notebooks.mkdir()
    (notebooks / f"{LESSON}.ipynb").write_text("{}")
    assert check_site.main([str(tmp_path), "--notebooks", str(notebooks)]) == 1
    printed = capsys.readouterr().out
    assert "index.html: <script> loads https://cdn.example.org/x.js from another site" in printed
    assert "1 problems" in printed
