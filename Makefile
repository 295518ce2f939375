# tinyres: the two set-up commands are `make test` and `make demo`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: test demo docs bench clean
DOCS_STAMP := $(VENV)/.installed-docs

$(STAMP): setup.cfg pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

## make test: create .venv, install tinyres with its test dependencies, run the whole suite
test: $(STAMP)
	$(BIN)/python -m pytest -q

## make demo: train ResNet-20 on 5,000 real MNIST digits and print where the curves are
demo: $(STAMP)
	$(BIN)/tinyres train

$(DOCS_STAMP): $(STAMP)
	$(BIN)/pip install --quiet -e '.[dev,docs]'
	touch $(DOCS_STAMP)

## make docs: build the documentation site into site/, every warning an error
docs: $(DOCS_STAMP)
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict

## make bench: time the kernels against PyTorch and the NumPy reference
bench: $(STAMP)
	$(BIN)/python benchmarks/bench_kernels.py

clean:
	rm -rf $(VENV) runs .pytest_cache
