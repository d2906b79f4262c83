# Two entry points for a fresh machine (see README):  `make demo`  and  `make test`.
PYTHON ?= python3
VENV   ?= .venv
CORES  ?= 2
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.setup-stamp

.PHONY: setup demo test bench clean-data

## setup: create .venv with torch 2.13 (CPU wheel) and the project installed
setup: $(STAMP)
$(STAMP): pyproject.toml tools/setup.sh
	PYTHON=$(PYTHON) bash tools/setup.sh $(VENV)
	touch $@

## demo: run the whole workflow on the embedded synthetic default
demo: setup
	PATH="$(abspath $(BIN)):$$PATH" $(BIN)/snakemake --cores $(CORES) demo --configfile config/demo.yaml

## test: run the test suite (what CI runs)
test: setup
	$(BIN)/python -m pytest -n $(CORES) --dist loadgroup

## clean-data: remove generated data, results and logs
clean-data:
	rm -rf data results logs .snakemake
