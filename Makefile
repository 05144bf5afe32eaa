# Two entry points for a fresh machine: `make lab` and `make test`.
# Both create .venv in the repo on first use and reuse it afterwards.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
# torch first (tools/install_torch.sh), from the package index unless TORCH_INDEX_URL names another;
# TORCH_SPEC picks the version (torch >= 2.13).
TORCH_SPEC ?= torch==2.13.0
export TORCH_SPEC
STAMP := $(VENV)/.xtlab-installed
SANITIZE := notebooks/nbval_sanitize.cfg

.PHONY: setup lab test unit e2e binder-check binder-lock links site notebooks notebooks-check notebooks-test lint bench clean \
	classroom-source classroom-demo

setup: $(STAMP)

$(STAMP): pyproject.toml binder/requirements.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -c "import torch" 2>/dev/null || tools/install_torch.sh $(PY)
	$(PY) -m pip install --disable-pip-version-check -e ".[lab,test,docs]"
	touch $(STAMP)

# Containers often run as root, which JupyterLab refuses without --allow-root.
LAB_FLAGS := $(if $(filter 0,$(shell id -u)),--allow-root,)

lab: $(STAMP)
	cd notebooks && ../$(VENV)/bin/jupyter lab $(LAB_FLAGS)

# Every test, in one pytest session on both cores (pytest-xdist, one test file or notebook per worker at a time):
# the unit and browser tests and both editions of every notebook under nbval, outputs compared. The browser tests
# come first: they are the longest file, and started last they would run alone at the end.
NBVAL := --nbval --nbval-sanitize-with $(SANITIZE) -p no:cacheprovider

test: $(STAMP)
	$(PY) -m ruff check .
	$(PY) -m pytest tests/e2e tests notebooks solutions $(NBVAL) -n 2 --dist loadfile --durations=10

# The fast loop while editing: no browser, no DDP processes, no scratch environments.
unit: $(STAMP)
	$(PY) -m pytest tests -m "not e2e and not slow"

e2e: $(STAMP)
	$(PY) -m pytest tests/e2e -v -s

# The course website, built offline from the stored notebooks into site/ (open site/index.html).
site: $(STAMP)
	$(PY) tools/build_site.py

# Rewrites the README's badges and launch links from [project.urls] Repository in pyproject.toml (for a fork).
links: $(STAMP)
	$(PY) tools/links.py

# Regenerates binder/requirements.txt, the exact (pinned) environment Binder builds, from pyproject.toml.
binder-lock: $(STAMP)
	$(PY) tools/binder_lock.py

# Builds a scratch venv from binder/ only and runs the tour notebook in it (a few minutes).
binder-check: $(STAMP)
	$(PY) tools/binder_check.py

notebooks-test: $(STAMP)
	$(PY) -m pytest notebooks solutions $(NBVAL)

lint: $(STAMP)
	$(PY) -m ruff check .

# Build both editions of every notebook from notebooks/src/*.py, executed, with outputs stored (what nbval
# compares): the learner edition in notebooks/, the solutions in solutions/. NOTEBOOK=01_layer_dropout builds one.
notebooks: $(STAMP)
	$(PY) tools/build_notebooks.py $(NOTEBOOK)

# Fails when a stored notebook is out of date with its source.
notebooks-check: $(STAMP)
	$(PY) tools/build_notebooks.py --check

# nbgrader: the labs as assignments in a course directory (COURSE=path), for nbgrader's own commands.
COURSE ?= classroom
classroom-source: $(STAMP)
	$(PY) tools/classroom.py source $(COURSE)

# nbgrader end to end in a scratch course directory: generate_assignment, autograde of three sample submissions per
# lab (solutions, the release untouched, one catalogued wrong answer) and generate_feedback; one score line each.
classroom-demo: $(STAMP)
	$(PY) tools/classroom.py demo

# A class on JupyterHub, on this machine (deploy/README.md): http://127.0.0.1:8000, any user name, the shared
# password xtlab-class (XTLAB_HUB_PASSWORD); it prints the nbgitpuller link that gives each student the course.
HUB_PROXY := deploy/.proxy/node_modules/.bin/configurable-http-proxy
HUB_INSTALL := $(PY) -c "import jupyterhub, nbgitpuller" 2>/dev/null || $(PY) -m pip install --disable-pip-version-check -e ".[hub]"
.PHONY: hub hub-test
$(HUB_PROXY):
	npm install --prefix deploy/.proxy --no-audit --no-fund configurable-http-proxy
hub: $(STAMP) $(HUB_PROXY)
	$(HUB_INSTALL)
	@echo "students open: $$($(PY) deploy/pull_link.py)"
	$(VENV)/bin/jupyterhub -f deploy/jupyterhub_config.py
# Two students log in, pull the course and run lab 01 in the browser; not part of `make test` (about 4 minutes).
hub-test: $(STAMP) $(HUB_PROXY)
	$(HUB_INSTALL)
	$(PY) -m pytest tests/e2e/test_class_hub.py -m hub -v -s

bench: $(STAMP)
	$(PY) benchmarks/run_all.py

clean:
	rm -rf $(VENV)
