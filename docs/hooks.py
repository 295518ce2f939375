"""Build hooks of the documentation site (see ``hooks:`` in mkdocs.yml).

* The lessons live in ``notebooks/`` at the top of the repository, where Jupyter users find
  them, outside the docs folder; :func:`on_files` adds each one as the page
  ``notebooks/<name>.ipynb`` before the mkdocs-jupyter plugin turns notebooks into pages.
* A lesson links to the next one as ``02_im2col_convolution.ipynb`` (right inside Jupyter);
  on the site every lesson is its own folder, so :func:`on_post_page` rewrites those links.
"""
import pathlib
import re

from mkdocs.plugins import event_priority
from mkdocs.structure.files import File

ROOT = pathlib.Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "notebooks"
LESSON_LINK = re.compile(r'href="(\d\d_[a-z0-9_]+)\.ipynb"')


@event_priority(100)  # before mkdocs-jupyter looks for notebooks
def on_files(files, config):
    for notebook in sorted(NOTEBOOKS.glob("*.ipynb")):
        files.append(File(f"notebooks/{notebook.name}", src_dir=str(ROOT),
                          dest_dir=config["site_dir"], use_directory_urls=config["use_directory_urls"]))
    return files


def on_post_page(output, page, config):
    if not page.file.src_uri.startswith("notebooks/"):
        return output
    prefix = "../" if config["use_directory_urls"] else ""
    suffix = "/" if config["use_directory_urls"] else ".html"
    return LESSON_LINK.sub(lambda match: f'href="{prefix}{match.group(1)}{suffix}"', output)
