# tinyres: the two set-up commands are `make test` and `make demo`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: test demo docs bench clean

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

## make bench: time the kernels against PyTorch and the NumPy reference
bench: $(STAMP)
	$(BIN)/python benchmarks/bench_kernels.py

clean:
	rm -rf $(VENV) runs .pytest_cache
