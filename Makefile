# `make test` and `make book` create the virtual environment on first use.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: test book benchmarks clean-book

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --upgrade pip
	$(BIN)/python -m pip install torch==2.14.1 torchvision==0.29.1
	$(BIN)/python -m pip install -e '.[dev]'
	touch $(STAMP)

test: $(STAMP)
	$(BIN)/python -m pytest -q

BENCHMARK := data/synthetic/meta.json

$(BENCHMARK): | $(STAMP)
	$(BIN)/mpm synth --out data/synthetic

book: $(STAMP) $(BENCHMARK)
	$(BIN)/jupyter-book build . --config _config.yml --toc book/_toc.yml --warningiserror --keep-going

benchmarks: $(STAMP)
	for f in benchmarks/*.py; do $(BIN)/python $$f || exit 1; done

clean-book:
	rm -rf _build
