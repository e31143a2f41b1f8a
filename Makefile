# The two commands of the README: `make demo` and `make test`.  Each creates or refreshes
# .venv on its own, so both work on a fresh clone with nothing installed by hand.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-stamp

.PHONY: demo test lab build sandbox clean

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	# torch first, exactly pinned: pip takes the local CPU wheel instead of the CUDA build.
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e '.[dev]'
	touch $(STAMP)

# bubblewrap is the grading sandbox; install it where we can (root with apt), else grading
# falls back to resource limits only and says so loudly.
sandbox:
	@command -v bwrap >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    (apt-get install -y -qq bubblewrap >/dev/null 2>&1 || \
	     (apt-get update -qq >/dev/null 2>&1 && apt-get install -y -qq bubblewrap >/dev/null 2>&1)) \
	     || echo "WARNING: could not install bubblewrap; grading will run with resource limits only"; \
	  else echo "WARNING: bubblewrap (bwrap) not found; grading will run with resource limits only"; fi; }

build: $(STAMP)
	$(PY) -m grader build

demo: $(STAMP) sandbox
	$(PY) -m grader demo --out build/demo

test: $(STAMP) sandbox
	$(PY) -m pytest -n 2 --dist loadfile -q -p no:warnings

lab: $(STAMP)
	$(VENV)/bin/jupyter lab exercises/

clean:
	rm -rf build .pytest_cache
