# The two commands of the README:  make serve  |  make test
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# The service reads REWARD_PORT / REWARD_HOST itself; PORT / HOST are the short forms.
PORT ?= $(or $(REWARD_PORT),8000)
HOST ?= $(or $(REWARD_HOST),127.0.0.1)

.PHONY: install serve test lint bench demo clean

$(STAMP): pyproject.toml scripts/install_system.sh scripts/install_deploy_tools.sh
	bash scripts/install_system.sh
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	# torch first, pinned: the CPU build on this kind of machine (an unpinned torch pulls CUDA)
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e '.[trainer,dev]'
	bash scripts/install_deploy_tools.sh $(VENV)/tools
	touch $(STAMP)

install: $(STAMP)

serve: install  ## start the HTTP service on $(HOST):$(PORT) (PORT/HOST or REWARD_PORT/REWARD_HOST)
	$(VENV)/bin/reward-server serve --host $(HOST) --port $(PORT)

test: install  ## the whole test suite (GPU-only tests are deselected)
	$(PY) -m pytest -m "not gpu" -q

lint: install
	$(VENV)/bin/ruff check .

bench: install
	$(PY) bench/throughput.py

clean:
	rm -rf $(VENV) .pytest_cache

demo: install  ## tiny CPU demo: curate -> stage 1 -> stage 2 -> plot (runs/demo/plot.png)
	PYTHON=$(PY) bash scripts/demo.sh
