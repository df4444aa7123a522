# The two commands a new machine needs: `make ensemble` and `make test`.
# The interpreter .venv is made from. The distribution's own python3 comes first when it is
# 3.11+ with venv and its headers: Debian's and Ubuntu's are built with PGO and LTO, and the
# server spends 12 % less CPU per write on Debian's 3.11 than on a plain ./configure build of
# the same version (pyenv's default; see the README's benchmark section). Else python3 on PATH.
# `make install PYTHON=...` picks another.
FIT_PYTHON := import os, sys, sysconfig, ensurepip; \
	sys.exit(sys.version_info < (3, 11) or not os.path.exists(os.path.join(sysconfig.get_paths()["include"], "Python.h")))
ifeq ($(origin PYTHON),undefined)
PYTHON := $(firstword $(foreach p,/usr/bin/python3 $(shell command -v python3),\
	$(shell $(p) -c '$(FIT_PYTHON)' 2>/dev/null && echo $(p))) python3)
endif
VENV ?= .venv
PY := $(VENV)/bin/python

.PHONY: install test lint deps ensemble bench sim clean bindings-test

$(VENV)/.installed: setup.py pyproject.toml $(wildcard native/src/*)
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test]'
	$(PY) -c "import native, sys; print('native core:', native.IMPLEMENTATION, '| python', sys.version.split()[0], 'from', sys.base_prefix)"
	touch $@

install: $(VENV)/.installed

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy --strict zkcore cluster zkclient checker verify bench tests/sim

# Debian packages the tests use: ZooKeeper's zkCli.sh and C client (real clients of the
# ZooKeeper door), nftables (real network partitions between namespaces) and strace (a real
# fdatasync made slow).
deps:
	@missing=""; \
	command -v nft >/dev/null || missing="$$missing nftables"; \
	command -v strace >/dev/null || missing="$$missing strace"; \
	[ -x /usr/share/zookeeper/bin/zkCli.sh ] || missing="$$missing zookeeper"; \
	[ -f /usr/include/zookeeper/zookeeper.h ] || missing="$$missing libzookeeper-mt-dev"; \
	if [ -n "$$missing" ]; then \
		echo "installing$$missing (Debian)"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	fi

# Lint, then the default suite (native tests cover both twins), then storage on the Python twin,
# then the C and Node.js bindings. The default suite runs in two parts: the tests that need no
# process or socket of their own (SANS_IO) on two workers, then the rest, which start ensembles
# and time what they do, alone: beside other work those timings fail.
SANS_IO := tests/zkcore tests/zab tests/sim tests/native tests/checker tests/conformance tests/storage \
	tests/test_purity.py tests/test_tree_index.py
test: lint deps
	$(PY) -m pytest -q -n 2 $(SANS_IO)
	$(PY) -m pytest -q $(addprefix --ignore=,$(SANS_IO))
	ZKPY_NATIVE=0 $(PY) -m pytest -q tests/storage
	$(MAKE) bindings-test

# The bindings (bindings/c, bindings/node): vectors, live suites and the conformance scenarios,
# each against its own launcher-started ensemble. Installs libzmq3-dev when it is missing; a
# missing tool fails the target, nothing is skipped.
bindings-test: install
	@command -v cc >/dev/null || { echo "bindings-test: no C compiler (cc)" >&2; exit 1; }
	@command -v node >/dev/null && command -v npm >/dev/null || { echo "bindings-test: node >= 20 and npm are required" >&2; exit 1; }
	@node -e 'process.exit(+process.versions.node.split(".")[0] >= 20 ? 0 : 1)' || { echo "bindings-test: node >= 20 is required, found $$(node --version)" >&2; exit 1; }
	@if ! { command -v pkg-config >/dev/null && pkg-config --exists libzmq; }; then \
		echo "bindings-test: libzmq not found: apt-get install libzmq3-dev"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq pkg-config libzmq3-dev \
			|| { echo "bindings-test: could not install libzmq3-dev" >&2; exit 1; }; \
	fi
	@pkg-config --exists libzmq || { echo "bindings-test: libzmq still not found by pkg-config" >&2; exit 1; }
	npm ci --prefix bindings/node --no-audit --no-fund
	$(MAKE) -C bindings/c test PYTHON=$(abspath $(PY))
	ZKPY_PYTHON=$(abspath $(PY)) npm test --prefix bindings/node

ensemble: install
	$(PY) -m cluster.launch --nodes 5

bench: install
	$(PY) -m pytest bench --benchmark-only -q

clean:
	rm -rf $(VENV) build *.egg-info native/_zkpy_native*.so bindings/c/build bindings/node/node_modules
