# Two commands do everything on a fresh machine: `make repro` (the pipeline) and `make test`.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install repro test real-subset clean

$(STAMP): pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	# CPU build of PyTorch first, pinned (a looser spec would fetch a multi-GB CUDA build)
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

repro: $(STAMP)
	. $(BIN)/activate && dvc repro

test: $(STAMP)
	. $(BIN)/activate && pytest -q

# The whole DAG on the 1,625 real PTB-XL ECGs of ../shared/ptbxl-real-subset (folds 1-9): train on 1-8,
# early-stop on 9, and evaluate on 9 too (the subset has no fold 10; the metrics say so). SEED=n varies it.
SEED ?= 42
REAL_SUBSET ?= ../shared/ptbxl-real-subset
real-subset: $(STAMP)
	. $(BIN)/activate && dvc exp run -n real-subset-seed$(SEED) -S data.source=folder \
		-S data.folder=$(REAL_SUBSET) -S 'prepare.test_folds=[9]' -S seed=$(SEED)

clean:
	rm -rf $(VENV) data .dvc/tmp
