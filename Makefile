# tinyres: the two set-up commands are `make test` and `make demo`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: test demo docs lessons bench clean
LESSONS_STAMP := $(VENV)/.installed-lessons

$(STAMP): setup.cfg pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev,docs]'
	touch $(STAMP)

## make test: create .venv, install tinyres with its test dependencies (the docs extra too: the
## tests check the site's generated pages and its checker), run the whole suite
test: $(STAMP)
	$(BIN)/python -m pytest -q

## make demo: train ResNet-20 on 5,000 real MNIST digits and print where the curves are
demo: $(STAMP)
	$(BIN)/tinyres train

## make docs: build the documentation site into site/, every warning an error; the lessons are
## executed on the way (about a minute), and docs/check_site.py then checks the built site:
## nothing loaded from another site, no dead link, every lesson page with its outputs
docs: $(STAMP)
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict
	$(BIN)/python docs/check_site.py site

$(LESSONS_STAMP): $(STAMP)
	$(BIN)/pip install --quiet -e '.[dev,lessons]'
	touch $(LESSONS_STAMP)

## make lessons: JupyterLab from .venv on the lessons in notebooks/
lessons: $(LESSONS_STAMP)
	$(BIN)/jupyter lab notebooks/

## make bench: time the kernels against PyTorch and the NumPy reference, with OpenBLAS free
## to pick its own kernels (OPENBLAS_CORETYPE/OPENBLAS_L2_SIZE, where a machine sets them,
## halve NumPy's GEMM speed)
bench: $(STAMP)
	env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE $(BIN)/python benchmarks/bench_kernels.py

clean:
	rm -rf $(VENV) runs .pytest_cache build/docs-lessons site
