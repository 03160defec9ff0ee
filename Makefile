# Two entry points for a fresh Debian/Ubuntu machine: `make demo` and `make test`.
# Each installs what is missing (system packages with apt-get when root, else prints the command;
# Python packages into .venv from pyproject.toml) and then does its job.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
DEMO_PKGS := ffmpeg espeak-ng nginx
TEST_PKGS := $(DEMO_PKGS) redis-server chromium janus prometheus prometheus-nginx-exporter \
             gstreamer1.0-tools gstreamer1.0-plugins-good gstreamer1.0-plugins-bad gstreamer1.0-libav

.PHONY: demo test lint typecheck bench sysdeps-demo sysdeps-test venv clean

demo: sysdeps-demo venv
	$(BIN)/spillway demo

test: sysdeps-test venv
	$(BIN)/ruff check transcoder origin tests bench
	$(BIN)/mypy
	$(BIN)/pytest -n 2 --dist loadfile -m "not serial"
	$(BIN)/pytest -m serial

lint: venv
	$(BIN)/ruff check transcoder origin tests bench

typecheck: venv
	$(BIN)/mypy

bench: venv
	$(BIN)/python bench/transcode.py

# A package is missing when its main binary is absent (nginx and redis live in /usr/sbin or /usr/bin) and dpkg
# does not list it as installed (plugin packages have no binary of their name).
define ensure_packages
	@missing=""; \
	for pkg in $(1); do \
	  bin=$$pkg; \
	  command -v $$bin >/dev/null 2>&1 || [ -x /usr/sbin/$$bin ] || [ -x /usr/bin/$$bin ] || \
	    dpkg-query -W -f='$${Status}' $$pkg 2>/dev/null | grep -q 'ok installed' || missing="$$missing $$pkg"; \
	done; \
	$(PYTHON) -c 'import ensurepip, venv' >/dev/null 2>&1 || missing="$$missing python3-venv"; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = "0" ]; then \
	    echo "Installing system packages:$$missing"; \
	    apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends$$missing; \
	  else \
	    echo "Missing system packages:$$missing"; \
	    echo "Run this, then try again:  sudo apt-get update && sudo apt-get install -y --no-install-recommends$$missing"; \
	    exit 1; \
	  fi; \
	fi
endef

sysdeps-demo:
	$(call ensure_packages,$(DEMO_PKGS))

sysdeps-test:
	$(call ensure_packages,$(TEST_PKGS))

venv: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python >= 3.11 is required")'
	[ -x $(BIN)/python ] || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test,bench]'
	touch $@

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache build *.egg-info
