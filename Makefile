# Two entry points for a fresh machine (see README):  `make demo`  and  `make test`.
PYTHON ?= python3
VENV   ?= .venv
CORES  ?= 2
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.setup-stamp

.PHONY: setup demo test bench lock clean-data

## setup: create .venv with torch 2.13 (CPU wheel) and the locked dependencies (requirements.lock)
setup: $(STAMP)
$(STAMP): pyproject.toml requirements.lock tools/setup.sh
	PYTHON=$(PYTHON) bash tools/setup.sh $(VENV)
	touch $@

## lock: re-resolve pyproject.toml's dependencies in a throw-away venv into requirements.lock
lock:
	PYTHON=$(PYTHON) bash tools/lock.sh

## demo: run the whole workflow on the embedded synthetic default
demo: setup
	PATH="$(abspath $(BIN)):$$PATH" $(BIN)/snakemake --cores $(CORES) demo --configfile config/demo.yaml

## test: run the test suite (what CI runs)
test: setup
	PATH="$(abspath $(BIN)):$$PATH" $(BIN)/python -m pytest -n $(CORES) --dist loadgroup

## bench: run every speed script once, ~3 min on 2 cores (the README's Benchmarks sizes where
## they are quick; fewer training steps, no release-model inference). bench_loader and
## bench_infer read the demo's prepared data: run `make demo` first, else they stop with a
## message and exit status 2.
bench: setup
	$(BIN)/python benchmarks/bench_sens_reader.py --frames 100
	$(BIN)/python benchmarks/bench_dgs_op.py
	$(BIN)/python benchmarks/bench_train_step.py --steps 3 --warmup 1
	$(BIN)/python benchmarks/bench_metrics.py
	$(BIN)/python benchmarks/bench_prepare.py --frames 40
	$(BIN)/python benchmarks/bench_loader.py --rounds 1
	$(BIN)/python benchmarks/bench_infer.py --frames 1 --repeats 1 --release-frames 0 --checkpoint data/prepared/models/dgs/final.pt
	$(BIN)/python benchmarks/bench_evaluate.py --frames 5
	$(BIN)/python benchmarks/bench_sphere_trace.py --sizes 256x192

## clean-data: remove what the workflow generated for config/*.yaml (work and synthetic roots,
## .snakemake/); a dataset kept elsewhere under data/ stays
clean-data:
	$(PYTHON) tools/clean_generated.py
