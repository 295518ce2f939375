"""Check a built site before anyone reads it: ``python docs/check_site.py site``.

Three promises of the site, checked on the HTML that ``mkdocs build`` wrote:

* **Offline.**  No page loads anything from another site: no ``<script>``, stylesheet,
  font, image or frame with an absolute ``http(s)://`` or ``//`` address, and no inline
  script that imports one.  (Links a reader may follow, ``<a href="https://...">``, are fine.)
* **No dead link.**  Every relative ``href``/``src`` of every page names a file of the site
  and, with a ``#fragment``, an element of that page with that id.
* **Lessons with their outputs.**  Every lesson page (``notebooks/<name>.html`` for each
  notebook of ``notebooks/``) exists, every code cell on it ran (``In [n]:``, never
  ``In [ ]:``), it shows at least one output and one plot, and it links its ``.ipynb``.

Exits 1 listing every problem, 0 when there is none.  No browser needed: the checks read
the files with the standard library's HTML parser.
"""
import argparse
import html.parser
import pathlib
import re
import sys
import urllib.parse

# (tag, attribute) pairs whose URL the browser fetches by itself as the page loads
LOADED = {("script", "src"), ("img", "src"), ("iframe", "src"), ("source", "src"),
          ("video", "src"), ("audio", "src"), ("embed", "src"), ("object", "data"),
          ("input", "src"), ("track", "src")}
LOADED_LINK_RELS = {"stylesheet", "icon", "preload", "prefetch", "preconnect", "modulepreload",
                    "dns-prefetch", "manifest", "apple-touch-icon"}
EXTERNAL = re.compile(r"^(?:[a-z][a-z0-9+.-]*:)?//", re.I)
NOT_A_FILE = re.compile(r"^(?:mailto|tel|javascript|data|blob|about):", re.I)
# an inline script that fetches code or styles from elsewhere
REMOTE_IN_SCRIPT = re.compile(r"""(?:import\s*\(?|fetch\s*\(|\.src\s*=|@import)\s*["'`](?:https?:)?//""")
REMOTE_IN_CSS = re.compile(r"""(?:@import\s+(?:url\()?|url\()\s*["']?(?:https?:)?//""", re.I)


class Page(html.parser.HTMLParser):
    """What the checks need from one HTML page: its URLs, ids, inline scripts and prompts."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.loads = []          # (tag, URL) fetched as the page loads
        self.links = []          # (tag, URL) of every href/src, loaded or followed
        self.ids = set()
        self.scripts = []        # the text of inline <script> elements
        self.styles = []         # the text of inline <style> elements
        self.prompts = []        # the text inside each "In [...]:" of a code cell
        self.outputs = 0         # output areas of code cells
        self.images = 0          # pictures among them (inline PNG/SVG or files)
        self._in = None
        self._in_prompt = False
        self._prompt_text = ""
        self._depth = 0          # <div> nesting, to know when an output area ends
        self._output_depth = None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        for key in ("id", "name"):
            if attrs.get(key):
                self.ids.add(attrs[key])
        for attribute in ("href", "src", "data"):
            url = attrs.get(attribute)
            if url is None:
                continue
            self.links.append((tag, url))
            rels = set((attrs.get("rel") or "").lower().split())
            if (tag, attribute) in LOADED or (tag == "link" and rels & LOADED_LINK_RELS):
                self.loads.append((tag, url))
        classes = set((attrs.get("class") or "").split())
        if tag == "div":
            self._depth += 1
            if "jp-InputPrompt" in classes:
                self._in_prompt, self._prompt_text = True, ""
            if "jp-OutputArea-output" in classes and self._output_depth is None:
                self.outputs += 1
                self._output_depth = self._depth
        if tag in ("img", "svg") and self._output_depth is not None:
            self.images += 1
        if tag in ("script", "style") and "src" not in attrs:
            self._in = (tag, [])

    def handle_endtag(self, tag):
        if self._in and tag == self._in[0]:
            (self.scripts if tag == "script" else self.styles).append("".join(self._in[1]))
            self._in = None
        if tag == "div":
            if self._in_prompt:
                self.prompts.append(self._prompt_text.strip())
                self._in_prompt = False
            if self._output_depth == self._depth:
                self._output_depth = None
            self._depth -= 1

    def handle_data(self, data):
        if self._in:
            self._in[1].append(data)
        if self._in_prompt:
            self._prompt_text += data


def parse(path):
    page = Page()
    page.feed(path.read_text(encoding="utf-8", errors="replace"))
    page.close()
    return page


def _target(site, page_path, url):
    """The file ``url`` (relative, found on ``page_path``) names, and its fragment."""
    parts = urllib.parse.urlsplit(url)
    path = urllib.parse.unquote(parts.path)
    if not path:
        return page_path, parts.fragment
    base = site if path.startswith("/") else page_path.parent
    target = (base / path.lstrip("/")).resolve()
    if target.is_dir():
        target = target / "index.html"
    return target, parts.fragment


def check_offline(site, pages):
    problems = []
    for path, page in pages.items():
        where = path.relative_to(site)
        for tag, url in page.loads:
            if EXTERNAL.match(url.strip()):
                problems.append(f"{where}: <{tag}> loads {url} from another site")
        for script in page.scripts:
            match = REMOTE_IN_SCRIPT.search(script)
            if match:
                problems.append(f"{where}: an inline script loads code from elsewhere: "
                                f"{script[match.start():match.start() + 80]!r}")
        for style in page.styles:
            if REMOTE_IN_CSS.search(style):
                problems.append(f"{where}: an inline style loads something from another site")
    for css in sorted(site.rglob("*.css")):
        if REMOTE_IN_CSS.search(css.read_text(encoding="utf-8", errors="replace")):
            problems.append(f"{css.relative_to(site)}: loads something from another site")
    return problems


def check_links(site, pages):
    problems = []
    site = site.resolve()
    for path, page in pages.items():
        where = path.relative_to(site)
        for tag, url in page.links:
            url = url.strip()
            if not url or EXTERNAL.match(url) or NOT_A_FILE.match(url):
                continue
            target, fragment = _target(site, path.resolve(), url)
            if site not in target.parents and target != site:
                problems.append(f"{where}: <{tag}> {url} points outside the site")
            elif not target.is_file():
                problems.append(f"{where}: <{tag}> {url} -> no such file")
            elif fragment and target.suffix == ".html":
                target_page = pages.get(target) or parse(target)
                if urllib.parse.unquote(fragment) not in target_page.ids:
                    problems.append(f"{where}: <{tag}> {url} -> no element with id {fragment!r}")
    return problems


def check_lessons(site, pages, lesson_names):
    problems = []
    for name in lesson_names:
        path = (site / "notebooks" / f"{name}.html").resolve()
        page = pages.get(path)
        if page is None:
            problems.append(f"notebooks/{name}.html: the lesson page is missing")
            continue
        where = f"notebooks/{name}.html"
        # a code cell's prompt says "In [n]:" once it ran; a Markdown cell's prompt is empty
        code_prompts = [prompt for prompt in page.prompts if prompt.startswith("In")]
        unrun = [prompt for prompt in code_prompts if not re.search(r"\[\s*\d+\s*\]", prompt)]
        if not code_prompts:
            problems.append(f"{where}: no code cells")
        elif unrun:
            problems.append(f"{where}: {len(unrun)} of {len(code_prompts)} code cells did not "
                            "run (In [ ]:)")
        if page.outputs == 0:
            problems.append(f"{where}: no outputs")
        if page.images == 0:
            problems.append(f"{where}: no plot among the outputs")
        if not any(url.split("#")[0].endswith(f"{name}.ipynb") for _, url in page.links):
            problems.append(f"{where}: does not link {name}.ipynb")
    return problems


def check_site(site, lesson_names):
    """Every problem of the site in folder ``site`` as a list of lines (empty: none)."""
    site = pathlib.Path(site).resolve()
    if not (site / "index.html").is_file():
        return [f"{site}: no index.html -- is this a built site?"]
    pages = {path.resolve(): parse(path) for path in sorted(site.rglob("*.html"))}
    return (check_offline(site, pages) + check_links(site, pages)
            + check_lessons(site, pages, lesson_names))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("site", nargs="?", default="site", help="the built site (default: site)")
    parser.add_argument("--notebooks", default=str(pathlib.Path(__file__).resolve().parents[1]
                                                   / "notebooks"),
                        help="the folder of the lessons whose pages must have outputs")
    args = parser.parse_args(argv)
    lessons = sorted(path.stem for path in pathlib.Path(args.notebooks).glob("*.ipynb"))
    problems = check_site(args.site, lessons)
    for problem in problems:
        print(problem)
    pages = len(list(pathlib.Path(args.site).rglob("*.html")))
    print(f"check_site: {pages} pages, {len(lessons)} lessons: "
          + (f"{len(problems)} problems" if problems else "no external loads, no dead links, "
             "every lesson executed"))
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
