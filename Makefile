# audiovis: `make test` and `make demo` set everything up on a fresh machine.
PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin
STAMP   = $(VENV)/.installed

.PHONY: install test test-all lint typecheck bench demo clean

install: $(STAMP)

$(STAMP): pyproject.toml
	@# FluidSynth's system library (pyfluidsynth loads it at run time)
	@if ! ldconfig -p 2>/dev/null | grep -q libfluidsynth; then \
		if command -v apt-get >/dev/null 2>&1 && [ "$$(id -u)" = 0 ]; then \
			apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq libfluidsynth3 >/dev/null; \
		else \
			echo "warning: libfluidsynth not found; install it (README: Installing) for MIDI synthesis"; \
		fi; \
	fi
	test -d $(VENV) || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev,bench]'
	touch $(STAMP)

lint: install
	$(BIN)/ruff check audiovis tests bench
	$(BIN)/ruff format --check audiovis tests bench

typecheck: install
	$(BIN)/mypy

test: install lint typecheck
	$(BIN)/pytest -q

test-all: install
	$(BIN)/pytest -q -m ''

bench: install
	$(BIN)/audiovis bench

demo: install
	@if [ -f experiments/apvg_demo.yaml ]; then \
		$(BIN)/lightning fit --config experiments/apvg.yaml --config experiments/apvg_demo.yaml; \
	else \
		echo "make demo: set-up done; the short APVG demo run (experiments/apvg_demo.yaml) is not written yet (APVG issue)"; exit 1; \
	fi

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
