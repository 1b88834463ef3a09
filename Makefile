# `make test` and `make book` create the virtual environment on first use.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: test book notebooks figures screenshots benchmarks clean-book

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --upgrade pip
	$(BIN)/python -m pip install torch==2.14.1 torchvision==0.29.1
	$(BIN)/python -m pip install -e '.[dev]'
	touch $(STAMP)

BENCHMARK := data/synthetic/meta.json
# Each variant of the synthetic benchmark (mpm.config.BENCHMARK_VARIANTS) in its own folder, written by
# one byte-reproducible command, e.g. `make data/synthetic-market-like/meta.json`; the conditions chapter
# reads them all.
BENCHMARK_VARIANTS := synthetic-background-middle synthetic-market-like synthetic-masks-dilated synthetic-masks-segmenter
VARIANT_DATA := $(BENCHMARK_VARIANTS:%=data/%/meta.json)

# The unit tests, then every chapter of the book executed top to bottom and its outputs compared
# with the committed ones (strict nbval; book/nbval_sanitize.cfg masks paths, addresses, durations).
test: $(STAMP) $(BENCHMARK) $(VARIANT_DATA)
	$(BIN)/python -m pytest -q tests book --nbval --nbval-sanitize-with book/nbval_sanitize.cfg

$(BENCHMARK): | $(STAMP)
	$(BIN)/mpm synth --out data/synthetic

$(VARIANT_DATA): data/%/meta.json: | $(STAMP)
	$(BIN)/mpm synth --variant $* --out data/$*

book: $(STAMP) $(BENCHMARK) $(VARIANT_DATA)
	$(BIN)/jupyter-book build . --config _config.yml --toc book/_toc.yml --warningiserror --keep-going

# Every chapter's notebook rebuilt from its MyST text file and executed once, in place, with MPM_FIGURES
# set: the committed notebooks carry the outputs the committed results produce, and each figure a chapter
# draws lands in results/figures/<chapter>/<name>.png with its data as <name>.csv (a chapter's old figures
# are removed first). Run it in every commit that adds runs. CHAPTERS=name narrows it, e.g.
# `make notebooks CHAPTERS=mask_pooling`; `make figures` is the same target.
CHAPTERS ?= $(basename $(notdir $(wildcard book/*.ipynb)))
notebooks figures: $(STAMP) $(BENCHMARK) $(VARIANT_DATA)
	for chapter in $(CHAPTERS); do \
		$(BIN)/jupytext --quiet --sync book/$$chapter.md && \
		rm -rf results/figures/$$chapter && \
		MPM_FIGURES=$(CURDIR)/results/figures $(BIN)/jupyter nbconvert --to notebook --execute --inplace \
			--NotebookClient.record_timing=False --ExecutePreprocessor.timeout=-1 book/$$chapter.ipynb || exit 1; \
	done

benchmarks: $(STAMP)
	for f in benchmarks/*.py; do $(BIN)/python $$f || exit 1; done

# Every page of the built book opened in headless Chromium (installed from Debian when missing): a
# page whose tables or figures did not render fails; a screenshot per page in _build/screenshots/.
screenshots: book
	command -v chromium >/dev/null || (apt-get update && apt-get install -y chromium)
	$(BIN)/python .ci/screenshots.py _build/html _build/screenshots

clean-book:
	rm -rf _build

.PHONY: lab lab-check

# The chapters name their kernel "Python 3"; ipykernel's own spec says "Python 3 (ipykernel)", and
# JupyterLab would write that name into every chapter it opens (.md included) at its first autosave.
LAB_KERNEL := $(BIN)/python -m ipykernel install --sys-prefix --name python3 --display-name "Python 3"

# JupyterLab on the book, jupytext's pairing active (jupytext.toml): open a chapter's .ipynb.
lab: $(STAMP) $(BENCHMARK)
	$(LAB_KERNEL)
	$(BIN)/jupyter lab --ServerApp.root_dir=. --LabApp.default_url=/lab/tree/book --ServerApp.allow_root=True

# One chapter opened through JupyterLab in headless Chromium (installed from Debian when missing):
# fails unless every cell, table and figure is shown, with its kernel idle and nothing modified;
# the screenshot lands in _build/lab/. Outside `make test`.
LAB_CHAPTER ?= part_counts
lab-check: $(STAMP)
	command -v chromium >/dev/null || (apt-get update && apt-get install -y chromium)
	$(LAB_KERNEL)
	$(BIN)/python .ci/lab_check.py book/$(LAB_CHAPTER).ipynb _build/lab/$(LAB_CHAPTER).png
