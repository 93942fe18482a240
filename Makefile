# GCL Studio: every target creates .venv and installs what it needs from nothing.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
# The CPU build of torch (a pinned release lies on disk here; an open range pulls a multi-GB CUDA build).
TORCH_SPEC ?= torch==2.13.0
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml | cksum | cut -d' ' -f1)
# test processes: the engine runs torch on one thread per process, so two workers fill a 2-core machine;
# loadfile keeps a file's tests (and its session fixtures) in one worker
TEST_WORKERS ?= 2
XVFB := $(shell command -v xvfb-run 2>/dev/null)

.PHONY: venv demo test lint app bench soak bundle clean sysdeps

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q "$(TORCH_SPEC)"
	$(BIN)/python -m pip install -q -e ".[standalone,dev]"
	touch $(STAMP)

venv: $(STAMP)

# GUI tests need an X server (napari cannot add layers offscreen); install Xvfb when missing and root.
sysdeps:
	@if ! command -v Xvfb >/dev/null 2>&1; then \
		if [ "$$(id -u)" = "0" ]; then \
			echo "installing xvfb and the xcb libraries Qt needs"; \
			apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
				xvfb xauth libxcb-icccm4 libxcb-keysyms1 libxcb-image0 libxcb-render-util0 libxcb-xinerama0 \
				libxcb-randr0 libxcb-shape0 libxcb-xkb1 libxkbcommon-x11-0 libxcb-cursor0 libegl1 libgl1 \
				libfontconfig1 libdbus-1-3 >/dev/null; \
		else echo "warning: Xvfb missing and not root: GUI tests will be skipped"; fi; \
	fi

lint: venv
	$(BIN)/ruff check gcl_engine app tests benchmarks
	$(BIN)/lint-imports

test: venv sysdeps lint
	$(BIN)/python -m pytest -q -p no:cacheprovider -n $(TEST_WORKERS) --dist loadfile

demo: venv
	$(BIN)/python -m gcl_engine.demo --out demo_output

app: venv sysdeps
	$(BIN)/gcl-studio

bench: venv
	$(BIN)/python benchmarks/run_all.py

soak: venv sysdeps
	$(BIN)/python -m pytest -q -m soak tests/soak -p no:cacheprovider

bundle: venv
	bash installer/build.sh

clean:
	rm -rf $(VENV) demo_output build dist
