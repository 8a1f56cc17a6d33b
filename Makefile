# rnnbench: `make bench TASK=sine` runs a benchmark (report in reports/sine/; REFERENCE=1 regenerates the committed
# results/sine/; SWEEP=1 runs one grid per value of the experiment's SWEEP, e.g. TASK=adding over the delay T, and
# VALUES=50,100 only those of its values),
# `make test` runs the tests; both set up .venv when needed.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

TASK ?= sine
ARGS := $(if $(SMOKE),--smoke) $(if $(MODELS),--models $(MODELS)) $(if $(SEEDS),--seeds $(SEEDS)) \
        $(if $(EPOCHS),--epochs $(EPOCHS)) $(foreach s,$(SET),--set $(s)) $(if $(REFERENCE),--reference) \
        $(if $(WORKERS),--executor ray --workers $(WORKERS)) $(if $(SWEEP),--sweep) $(if $(VALUES),--values $(VALUES))

.PHONY: setup bench test test-multiprocess report ui list perf perf-grid results-table clean

setup: $(STAMP)

# Reinstalled only when pyproject.toml changes.
$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

bench: $(STAMP)
	$(BIN)/rnnbench bench --task $(TASK) $(ARGS)

report: $(STAMP)
	$(BIN)/rnnbench report --task $(TASK) $(if $(REFERENCE),--reference)

# Test modules run on TEST_WORKERS processes (pytest-xdist), each module whole in one of them (its fixtures are shared).
# `make test` is every test but the multi-process fault and concurrency ones (killed Ray workers, SIGTERM and resume,
# two grids racing for one store), which `make test-multiprocess` runs; CI runs both.
TEST_WORKERS ?= 2
test: $(STAMP)
	$(BIN)/python -m pytest -q -n $(TEST_WORKERS) --dist loadfile --durations=15 -m "not multiprocess"

test-multiprocess: $(STAMP)
	$(BIN)/python -m pytest -q -n $(TEST_WORKERS) --dist loadfile --durations=10 -m multiprocess

list: $(STAMP)
	$(BIN)/rnnbench list

# Speed measurements (throughput, runner overhead, pipeline, padding, kernels, FLOP/s) into results/perf/, then the
# grid serially against WORKERS (default 2) local Ray workers into results/perf/grid/.
perf: $(STAMP)
	$(BIN)/python -m rnnbench.perf
	$(BIN)/python -m rnnbench.perf.grid --workers $(or $(WORKERS),2)

perf-grid: $(STAMP)
	$(BIN)/python -m rnnbench.perf.grid --workers $(or $(WORKERS),2)

ui: $(STAMP)
	$(BIN)/rnnbench ui

# Removes the environment and caches; the MLflow store (mlflow.db, mlartifacts/) and results/ are kept.
clean:
	rm -rf $(VENV) .pytest_cache build *.egg-info checkpoints
	find . -name __pycache__ -type d -prune -exec rm -rf {} +

# The top-level README's table of results (best recurrent, best alternative, best baseline), from results/.
results-table: $(STAMP)
	$(BIN)/python -m rnnbench.results_index
