# Set-up and everyday commands. `make demo` and `make test` are all a fresh machine needs.

VENV := .venv
BIN := $(VENV)/bin
# Python for a new .venv: PYTHON if given (`make PYTHON=python3.12 install`), else the first of
# these that runs and is 3.11 or newer (version-manager shims may exist but not run).
PYTHON_CANDIDATES := python3.11 python3.12 python3.13 python3
# Installed again only when a file that decides what gets installed changes.
INSTALLED := $(VENV)/.installed
INSTALL_INPUTS := pyproject.toml constraints.txt plugins/bigcommerce/pyproject.toml \
	plugins/wms_generic/pyproject.toml
IS_311 := import sys; sys.exit(sys.version_info < (3, 11))

.PHONY: install test demo browser

install: $(INSTALLED)

$(INSTALLED): $(INSTALL_INPUTS)
	@if [ ! -x $(BIN)/python ]; then \
		python="$(PYTHON)"; \
		if [ -z "$$python" ]; then \
			for candidate in $(PYTHON_CANDIDATES); do \
				if $$candidate -c '$(IS_311)' >/dev/null 2>&1; then python=$$candidate; break; fi; \
			done; \
		fi; \
		if [ -z "$$python" ] || ! $$python -c '$(IS_311)'; then \
			echo "DropStream needs Python 3.11 or newer: install it or set PYTHON=..." >&2; exit 1; \
		fi; \
		echo "Creating $(VENV) with $$python"; \
		$$python -m venv $(VENV); \
	fi
	$(BIN)/pip install --quiet -c constraints.txt -e '.[test]' -e plugins/bigcommerce -e plugins/wms_generic
	@touch $@

# Extra pytest arguments: `make test PYTEST_ARGS="-x tests/test_cli.py"`.
test: install
	$(BIN)/pytest $(PYTEST_ARGS)

demo: install
	$(BIN)/dropstream demo

# Debian's Chromium for the console's browser tests (Playwright drives it; it never downloads
# a browser). Needs root; without it those tests are skipped outside CI.
browser:
	command -v chromium >/dev/null 2>&1 || (apt-get update -qq && apt-get install -y -qq chromium chromium-driver)
