# The two commands a new machine needs: `make ensemble` and `make test`.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python

.PHONY: install test lint deps ensemble bench sim clean

$(VENV)/.installed: setup.py pyproject.toml $(wildcard native/src/*)
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test]'
	$(PY) -c "import native; print('native core:', native.IMPLEMENTATION)"
	touch $@

install: $(VENV)/.installed

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy --strict zkcore cluster zkclient checker verify

# Debian packages the tests use: ZooKeeper's zkCli.sh and C client (real clients of the
# ZooKeeper door), and nftables (real network partitions between namespaces).
deps:
	@missing=""; \
	command -v nft >/dev/null || missing="$$missing nftables"; \
	[ -x /usr/share/zookeeper/bin/zkCli.sh ] || missing="$$missing zookeeper"; \
	[ -f /usr/include/zookeeper/zookeeper.h ] || missing="$$missing libzookeeper-mt-dev"; \
	if [ -n "$$missing" ]; then \
		echo "installing$$missing (Debian)"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	fi

# Lint, then the default suite (native tests cover both twins), then storage on the Python twin.
test: lint deps
	$(PY) -m pytest -q
	ZKPY_NATIVE=0 $(PY) -m pytest -q tests/storage

ensemble: install
	$(PY) -m cluster.launch --nodes 5

bench: install
	$(PY) -m pytest bench --benchmark-only -q

clean:
	rm -rf $(VENV) build *.egg-info native/_zkpy_native*.so
