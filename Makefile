# Two commands: `make demo` (meta-train and evaluate sinusoid MAML) and `make test`.
# Both create .venv with pinned packages on first use; only Python >= 3.10 is needed.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed
DEMO_ITERATIONS ?= 10000

.PHONY: demo test clean

$(INSTALLED): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -c constraints.txt torch==2.13.0
	$(BIN)/pip install --quiet --disable-pip-version-check -c constraints.txt -e '.[dev,rl]'
	touch $(INSTALLED)

demo: $(INSTALLED)
	$(BIN)/mamlkit train sinusoid name=demo train.iterations=$(DEMO_ITERATIONS) --overwrite
	$(BIN)/mamlkit eval runs/demo

test: $(INSTALLED)
	$(BIN)/python -m pytest

clean:
	rm -rf $(VENV) runs .pytest_cache
