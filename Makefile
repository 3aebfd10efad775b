# The two commands of the README: `make demo` and `make test`. Both create .venv when missing,
# install the pinned requirements into it (idempotent: re-runs only when the pins change), then run.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
OUT    ?= runs/demo

# Offline by default: litellm must not fetch its cost map, HF must not reach the hub.
export LITELLM_LOCAL_MODEL_COST_MAP := True
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export RAY_USAGE_STATS_ENABLED := 0
export TOKENIZERS_PARALLELISM := false

.PHONY: setup demo test test-timed test-heavy mutation bench clean

setup: $(STAMP)

$(STAMP): requirements.txt constraints.txt pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -c constraints.txt -r requirements.txt
	$(PY) -m pip install --quiet --no-deps -e .
	touch $(STAMP)

demo: $(STAMP)
	WANDB_MODE=$${WANDB_MODE:-offline} $(VENV)/bin/hieramas demo --out $(OUT)

TEST_CMD := $(PY) -m pytest -q -n 2 --dist loadgroup tests

test: $(STAMP)
	$(TEST_CMD)

# `make test` under /usr/bin/time: its wall time (and CPU, peak RSS, pass/fail counts, commit) go
# to bench/pytest_wall.json, which `hieramas bench` reports as the summary's pytest_wall_s.
test-timed: $(STAMP)
	$(PY) scripts/time_tests.py --out bench/pytest_wall.json -- $(TEST_CMD)

# The long variants (kill trials, fuzz, bad-input sweeps, 2000-request serve load), one at a time
# (the load and kill figures are timing-sensitive); CI runs them after `make test` (docs/TESTING.md).
test-heavy: $(STAMP)
	HIERAMAS_HEAVY=1 $(PY) -m pytest -q -m heavy tests

# Mutation testing of the core functions (docs/TESTING.md): mutmut over the functions listed in
# scripts/mutation.py, each group's mutants run against its covering test files only.
# GROUPS="paired_stats splits" runs some groups; the default is all of them (hours on 2 cores).
mutation: $(STAMP)
	$(PY) scripts/mutation.py run $(GROUPS)

bench: $(STAMP)
	$(PY) -m bench.run --out bench/results.json

clean:
	rm -rf $(VENV) runs .pytest_cache
