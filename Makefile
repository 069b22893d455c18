# Two commands on a fresh machine:
#   make demo   set up .venv, run the default hiring audit on builtin:minilm, write a report
#   make test   set up .venv (with the ray and page extras, and chromium), lint, run the tests
#               in two workers
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
export HF_HUB_OFFLINE := 1
export HF_HUB_DISABLE_PROGRESS_BARS := 1
export TOKENIZERS_PARALLELISM := false

.PHONY: demo test lint bench clean browser page

# torch first, pinned to the CPU build (a bare `torch` pulls a multi-GB CUDA build);
# the project then asks only torch>=2.4, which the installed build satisfies. (Not
# `pip --no-compile`: set-up was 60 s shorter, but every process a local Ray spawns then
# compiled ray's modules itself, and a fresh-clone suite took 10:58 instead of 9:30.)
$(BIN)/.torch:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet torch==2.13.0
	touch $@

$(BIN)/.installed: pyproject.toml $(BIN)/.torch
	$(BIN)/pip install --quiet -e ".[test]"
	touch $@

# the analyst page (uim-sim page): Solara and its offline JavaScript
$(BIN)/.installed-page: pyproject.toml $(BIN)/.torch
	$(BIN)/pip install --quiet -e ".[test,page]"
	touch $@ $(BIN)/.installed

# the test suite also runs the Ray executor (tests/test_ray.py; skipped without Ray),
# the analyst page and GGUF conversion (tests/test_gguf.py): everything in one pip call
# (not for the demo)
$(BIN)/.installed-test: pyproject.toml $(BIN)/.torch
	$(BIN)/pip install --quiet -e ".[test,ray,page,gguf]"
	touch $@ $(BIN)/.installed $(BIN)/.installed-page

# the page's browser tests drive Debian's chromium through Playwright (whose own browser
# download cannot work offline): installed with apt where this machine allows it
browser:
	@command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 || \
	  (export DEBIAN_FRONTEND=noninteractive; \
	   (apt-get update -qq && apt-get install -y -qq chromium) >/dev/null 2>&1 || \
	   (sudo -n apt-get update -qq && sudo -n apt-get install -y -qq chromium) >/dev/null 2>&1 || \
	   echo "note: chromium could not be installed; the page's browser tests will be skipped")

page: $(BIN)/.installed-page
	$(BIN)/uim-sim page results

demo: $(BIN)/.installed
	$(BIN)/uim-sim run scenarios/hiring_audit.yaml --out results/hiring_audit
	$(BIN)/uim-sim report results/hiring_audit

RUFF = $(BIN)/ruff check . && $(BIN)/ruff format --check .

lint: $(BIN)/.installed
	$(RUFF)

# two pytest workers, one per core (pytest-xdist; tests/conftest.py keeps modules that
# share a fixture together, hands out the longest first, and gives each worker one torch
# thread); the 15 slowest tests are listed at the end
test: $(BIN)/.installed-test browser
	$(RUFF)
	$(BIN)/python -m pytest -q -n 2 --dist loadgroup --no-loadscope-reorder --durations=15

bench: $(BIN)/.installed
	$(BIN)/python benchmarks/bench_engine.py
	$(BIN)/python benchmarks/bench_hiring_market.py
	$(BIN)/python benchmarks/bench_moderation.py

clean:
	rm -rf $(VENV) results .pytest_cache .ruff_cache
