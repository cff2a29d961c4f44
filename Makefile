# The two set-up commands a newcomer needs are `make run` and `make test`; both use `make install`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
PHOTOS ?= $(CURDIR)/.sample-photos
HOST   ?= 127.0.0.1
PORT   ?= 8000
export CAPDEX_DATA_DIR ?= $(CURDIR)/.capdex-data

# torch/torchvision builds that install from this machine's local wheel store (timm needs
# torchvision, and PyPI's torchvision only matches this torch pair).
TORCH_PINS := torch==2.14.1 torchvision==0.29.1

.PHONY: install run test sample-photos clean

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml Makefile
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet $(TORCH_PINS)
	$(BIN)/python -m pip install --quiet -e '.[all,test]' $(TORCH_PINS)
	touch $@

sample-photos: install
	$(BIN)/python -m capdex.samples $(PHOTOS)

run: install
	@if [ "$(PHOTOS)" = "$(CURDIR)/.sample-photos" ]; then $(BIN)/python -m capdex.samples $(PHOTOS); fi
	$(BIN)/capdex index $(PHOTOS)
	@echo "To use the command line on this index, in another terminal here:"
	@echo "    source $(VENV)/bin/activate && export CAPDEX_DATA_DIR=$(CAPDEX_DATA_DIR)"
	@echo '    capdex search "a cat"'
	$(BIN)/capdex serve --host $(HOST) --port $(PORT) --photo-root $(PHOTOS)

# Lint and type-check first: seconds, and a failure there stops before the long test run.
test: install
	$(BIN)/python -m ruff check --quiet --output-format concise .
	$(BIN)/python -m mypy
	$(BIN)/python -m pytest $(PYTEST_ARGS)

clean:
	rm -rf $(VENV) .capdex-data .sample-photos .pytest_cache .mypy_cache .ruff_cache
