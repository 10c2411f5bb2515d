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
	$(BIN)/pip install -q -e '.[dev,bench,pose]'
	@# the pose estimator of `audiovis prepare` and the real person video its tests import
	$(BIN)/pip install -q --no-deps mediapipe==0.10.21 sports2d==0.8.34
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

# a few minutes of APVG training on its studio set (the KHP first, then every stage jointly),
# then a held-out studio piece
DEMO = --config experiments/apvg.yaml --config experiments/apvg_demo.yaml
demo: install
	$(BIN)/lightning fit $(DEMO) --config experiments/apvg_demo_khp.yaml
	$(BIN)/lightning fit $(DEMO) \
		--model.init_args.init_from '{khp: runs/apvg_demo_khp/checkpoints/last.ckpt}'
	$(BIN)/lightning predict $(DEMO) --ckpt_path last \
		--data.predict_audio "$$($(BIN)/audiovis studio held-out cello $(DEMO) | head -n 1)" \
		--media_writer.output_dir runs/apvg_demo/predictions
	@echo "make demo: wrote $$(ls runs/apvg_demo/predictions/*.mp4 | head -n 1)"

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
