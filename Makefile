# Two commands do everything on a fresh machine: `make repro` (the pipeline) and `make test`.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install repro test bench clean

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

clean:
	rm -rf $(VENV) data .dvc/tmp
