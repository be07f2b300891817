# Two commands do everything on a fresh machine: `make repro` (the pipeline) and `make test`.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
TORCH_INDEX ?=

.PHONY: install repro test test-fast deps lint bench bench-prepare rehearsal rehearsal-10x real-subset real-subset-cv real-subset-published ptbxl ptbxl-published clean

$(STAMP): pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	# PyTorch first, pinned (a looser spec may fetch a multi-GB CUDA build). Where pip's index offers only
	# the CUDA build (plain PyPI on Linux), TORCH_INDEX=https://download.pytorch.org/whl/cpu gets the CPU one.
	$(BIN)/pip install --quiet torch==2.13.0 $(if $(TORCH_INDEX),--index-url $(TORCH_INDEX))
	$(BIN)/pip install --quiet -e '.[train,test]'
	touch $(STAMP)

install: $(STAMP)

repro: $(STAMP)
	. $(BIN)/activate && dvc repro

test: $(STAMP)
	. $(BIN)/activate && pytest -q

# the inner loop: everything but the end-to-end DVC runs (marked slow)
test-fast: $(STAMP)
	. $(BIN)/activate && pytest -q -m "not slow"

# dvc.yaml's code deps: exactly the files each stage's script runs (tests/test_dvc_deps.py checks them)
deps: $(STAMP)
	. $(BIN)/activate && python -m ecgproto.tools.code_deps --write

lint: $(STAMP)
	. $(BIN)/activate && ruff check ecgproto stages tests

# Speed and memory of the default model vs the published-size ResNet-18 (prints a table and writes
# benchmarks/bench.json, which the report quotes; commit it after a run).
bench: $(STAMP)
	. $(BIN)/activate && ecgproto bench --out benchmarks/bench.json

# prepare on a full-size (21,837-record) synthetic PTB-XL, beside the straightforward per-record loop
# (the synthetic tree is generated once into data/bench, about 2 minutes, and reused)
bench-prepare: $(STAMP)
	. $(BIN)/activate && ecgproto bench-prepare --out benchmarks/prepare.json

# `make ptbxl` at PTB-XL's full size, against a local PhysioNet-like server (a synthetic 21,799-record
# tree, generated once into data/rehearsal): the download is interrupted once and resumed, every stage
# is timed; writes benchmarks/rehearsal.json (commit it after a run). About 35 minutes on 2 idle cores.
rehearsal: $(STAMP)
	. $(BIN)/activate && ecgproto rehearsal --seed $(SEED) --out benchmarks/rehearsal.json

# The scale rehearsal: the whole DAG on a synthetic tree ten times PTB-XL's size (217,990 records, generated
# once into data/rehearsal10x, about 25 minutes), read in place (data.source folder, data.in_place: no download,
# no copy), epochs capped so that it takes about an hour on 2 cores; per-stage wall time and peak memory (resident, and the
# anonymous part) into benchmarks/rehearsal_10x.json (commit it after a run).
REHEARSAL_10X_CAPS ?= -S train.max_epochs=2 -S pretrain.max_epochs=10
rehearsal-10x: $(STAMP)
	. $(BIN)/activate && set -f && ecgproto rehearsal --scale 10 --seed $(SEED) $(REHEARSAL_10X_CAPS) \
		--out benchmarks/rehearsal_10x.json

# The whole DAG on the 1,625 real PTB-XL ECGs of ../shared/ptbxl-real-subset (folds 1-9): train on 1-8,
# early-stop on 9, and evaluate on 9 too (the subset has no fold 10; the metrics say so). SEED=n varies
# it; ARGS adds more -S overrides, e.g. ARGS="-S 'model.widths=[64,128,256,512]' -S 'model.depths=[2,2,2,2]'".
SEED ?= 42
ARGS ?=
REAL_SUBSET ?= $(abspath ../shared/ptbxl-real-subset)
real-subset: $(STAMP)
	. $(BIN)/activate && dvc exp run --temp -n real-subset-seed$(SEED) -S data.source=folder \
		-S data.folder=$(REAL_SUBSET) -S 'prepare.test_folds=[9]' -S seed=$(SEED) $(ARGS)

# Cross-validation on the real subset: folds 1-9 in three test groups of three, each predicted by a model
# trained on five folds and early-stopped on a sixth; pooled out-of-fold macro-AUROC (with interval,
# per label, per fold) of the final, projected, joint and baseline models, merged under NAME and
# SEED into metrics/real_subset_cv.json. About 20 min per seed on 2 cores; the clones in data/cv are
# kept, so a stopped run resumes. NAME=... ARGS="-S key=value ..." cross-validates another recipe.
NAME ?= params
real-subset-cv: $(STAMP)
	. $(BIN)/activate && set -f && ecgproto crossval --folder $(REAL_SUBSET) --seed $(SEED) --name $(NAME) $(ARGS)

# The published recipe (ResNet-18, sigmoid add-on, lr 1e-4, no standardisation, backbone trained in the
# joint stage with the published loss weights and the last layer frozen there, no crops, nearest-ECG
# projection, no pruning, last layer alone after projection), for comparison; on the real subset its
# epochs are capped for a CPU.
# Its values live in one place, ecgproto/recipes/published.yaml; `ecgproto recipe published` prints
# them as -S arguments (no spaces; `set -f` turns globbing off so that [64,...] stays literal).
PUBLISHED = $$(ecgproto recipe published)
real-subset-published: $(STAMP)
	. $(BIN)/activate && set -f && dvc exp run --temp -n real-subset-published-seed$(SEED) -S data.source=folder \
		-S data.folder=$(REAL_SUBSET) -S 'prepare.test_folds=[9]' -S seed=$(SEED) $(PUBLISHED) \
		-S train.max_epochs=12 -S train.patience=5 $(ARGS)

# Real PTB-XL, downloaded from PhysioNet (verified, resumable; data/download is kept between runs):
# train on folds 1-8, early-stop on 9, test on 10.
ptbxl: $(STAMP)
	. $(BIN)/activate && dvc exp run -n ptbxl-seed$(SEED) -S data.source=ptbxl -S seed=$(SEED) $(ARGS)

ptbxl-published: $(STAMP)
	. $(BIN)/activate && set -f && dvc exp run -n ptbxl-published-seed$(SEED) -S data.source=ptbxl -S seed=$(SEED) \
		$(PUBLISHED) $(ARGS)

clean:
	rm -rf $(VENV) data .dvc/tmp
