# Everything a fresh machine needs: `make demo` runs the main job, `make test` the whole suite.
# Both create .venv themselves (Python 3.11+, with the venv module) and install pinned deps.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell sha1sum pyproject.toml | cut -c1-12)

.PHONY: demo test lint typecheck unit bench bench-quick clean

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

# The fast tier: the test suite alone.
unit: $(STAMP)
	$(BIN)/python -m pytest

# Every bench on tiny sizes, once: a bench that stops running (or whose own correctness
# checks fail) fails `make test`. Speed targets are only reported, never enforced here.
bench-quick: $(STAMP)
	$(BIN)/python bench/plan.py --quick
	$(BIN)/python bench/k8s_render.py --quick
	$(BIN)/python bench/rollout.py --quick
	$(BIN)/python bench/faults.py --quick

test: lint typecheck unit bench-quick

bench: $(STAMP)
	$(BIN)/python bench/plan.py
	$(BIN)/python bench/rollout.py
	$(BIN)/python bench/k8s_render.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis
