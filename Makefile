# Everything a fresh machine needs: `make demo` runs the main job, `make test` the whole suite.
# Both create .venv themselves (Python 3.11+, with the venv module) and install pinned deps.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell sha1sum pyproject.toml | cut -c1-12)

.PHONY: demo test lint typecheck unit suite bench bench-quick clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --upgrade pip==25.3
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	rm -f $(VENV)/.installed-*
	touch $@

demo: $(STAMP)
	$(BIN)/cellops demo

lint: $(STAMP)
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench

typecheck: $(STAMP)
	$(BIN)/mypy src

# The fast tier (under a minute): the unit and component tests not marked slow, on two
# workers. The integration tests (real processes, servers) run in `make suite`.
unit: $(STAMP)
	CELLOPS_FAST_TIER=1 $(BIN)/python -m pytest -m "not slow" -n 2 tests/unit tests/component

# The whole test suite: the fast tier and the slow tests (real controllers, agents, servers).
suite: $(STAMP)
	$(BIN)/python -m pytest

# Every bench on tiny sizes, once: a bench that stops running (or whose own correctness
# checks fail) fails `make test`. Speed targets are only reported, never enforced here.
bench-quick: $(STAMP)
	$(BIN)/python bench/plan.py --quick
	$(BIN)/python bench/k8s_render.py --quick
	$(BIN)/python bench/rollout.py --quick
	$(BIN)/python bench/faults.py --quick
	$(BIN)/python bench/demo_stress.py --quick
	$(BIN)/python bench/router.py --quick
	$(BIN)/python bench/images.py --quick
	$(BIN)/python bench/cli.py --quick
	$(BIN)/python bench/metrics.py --quick
	$(BIN)/python bench/api.py --quick
	$(BIN)/python bench/dashboard.py --quick
	$(BIN)/python bench/keyless.py --quick

test: lint typecheck suite bench-quick

bench: $(STAMP)
	$(BIN)/python bench/plan.py
	$(BIN)/python bench/rollout.py
	$(BIN)/python bench/k8s_render.py
	$(BIN)/python bench/faults.py
	$(BIN)/python bench/demo_stress.py
	$(BIN)/python bench/router.py
	$(BIN)/python bench/images.py
	$(BIN)/python bench/cli.py
	$(BIN)/python bench/metrics.py
	$(BIN)/python bench/api.py
	$(BIN)/python bench/dashboard.py
	$(BIN)/python bench/keyless.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis
