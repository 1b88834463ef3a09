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

BENCHMARK := data/synthetic/meta.json

# The unit tests, then every chapter of the book executed top to bottom (nbval).
test: $(STAMP) $(BENCHMARK)
	$(BIN)/python -m pytest -q tests book --nbval-lax

$(BENCHMARK): | $(STAMP)
	$(BIN)/mpm synth --out data/synthetic

book: $(STAMP) $(BENCHMARK)
	$(BIN)/jupyter-book build . --config _config.yml --toc book/_toc.yml --warningiserror --keep-going

benchmarks: $(STAMP)
	for f in benchmarks/*.py; do $(BIN)/python $$f || exit 1; done

clean-book:
	rm -rf _build
