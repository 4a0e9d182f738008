# biobench: `make run` (default experiment on embedded data) and `make test` work on a fresh clone.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
RUN_DIR := outputs/make_run/$(shell date +%Y-%m-%d_%H-%M-%S)

.PHONY: run test test-full lint install clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

# Pruned classifier on scikit-learn's digits at four keep ratios, then a summary table and plot (~1 min).
run: $(STAMP)
	$(BIN)/biobench-train -m experiment=prune_digits pruning.keep_ratio=0.1,0.3,0.5,1.0 hydra.sweep.dir=$(RUN_DIR)
	$(BIN)/biobench-summarize $(RUN_DIR)
	@echo "Results: $(RUN_DIR)/<job>/metrics.json; summary and plot: $(RUN_DIR)/summary.md, $(RUN_DIR)/test_acc_vs_keep_ratio.png"

test: $(STAMP)
	$(BIN)/python -m pytest -m "not slow" -q

test-full: $(STAMP)
	$(BIN)/python -m pytest -q

lint: $(STAMP)
	$(BIN)/ruff check .

clean:
	rm -rf outputs/*/ .pytest_cache .ruff_cache
