# hearkit: two commands on a fresh Linux machine.
#   make demo   creates .venv, installs, runs the main job end to end on a built-in default
#   make test   installs what the tests need, runs them
#   make wheel  builds dist/hearkit-*.whl, what a device installs (copy it over, `pip install` it)
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
HEARKIT := $(VENV)/bin/hearkit
PYTEST_ARGS ?=
# Debian packages the project uses: espeak-ng, flite, festival and its festvox voices
# (speech synthesis for the demo and wake-word sets), wamerican (the word list that
# near-miss negatives come from), sox (signal generation in tests), libsndfile1
# (soundfile), qemu-user-static and debootstrap (the emulated arm64 parity suite).
DEB_PACKAGES := espeak-ng flite festival festvox-kallpc16k festvox-kdlpc16k festvox-us-slt-hts wamerican sox libsndfile1

.PHONY: demo test test-slow test-all test-arm fuzz install system-deps wheel clean help

help:
	@echo "make demo   - install into $(VENV) and run the main job end to end"
	@echo "make test   - install and run the test suite (not the slow tests)"
	@echo "make test-slow - the slow tests (training to accuracy)"
	@echo "make test-arm  - the emulated arm64 (Raspberry Pi) parity suite alone"
	@echo "make fuzz   - the long fuzz run (>= 10,000 hostile inputs; make test runs a short one)"
	@echo "make wheel  - build dist/hearkit-*.whl for a device (pip install it there; the runtime needs no torch)"

# setuptools prints a notice on every strict editable install ("Strict editable installation
# performed using the auxiliary directory"); the mode is chosen on purpose (below), so the
# notice is filtered and the install log keeps only what needs reading.
QUIET_EDITABLE := PYTHONWARNINGS="ignore:Editable installation"

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip setuptools wheel
	# torch first and pinned: 2.13.0 is a local CPU wheel here; a looser requirement
	# would pull several GB of CUDA packages (docs/design.md §7).
	$(PIP) install --quiet torch==2.13.0
	$(QUIET_EDITABLE) $(PIP) install --quiet -e ".[train,plot,dev,peer,embedding,piper,oww]" --config-settings editable_mode=strict
	touch $@

# The editable install is setuptools' "strict" mode: build/__editable__*/hearkit is a tree
# of links that mirrors package-dir (runtime/ as hearkit, training/ as hearkit.training, ...),
# so import-linter (which walks one folder per package) sees the whole package. A module
# added or removed needs the tree rebuilt (~1 s): any change to the folders below does that.
PACKAGE_DIRS := runtime training export devices
$(VENV)/.linked: $(VENV)/.installed $(shell find $(PACKAGE_DIRS) -type d -not -name __pycache__ 2>/dev/null)
	$(QUIET_EDITABLE) $(PIP) install --quiet --no-deps --no-build-isolation -e . --config-settings editable_mode=strict
	touch $@

install: $(VENV)/.installed $(VENV)/.linked

# $(call apt_install,PACKAGES): apt-get install those of PACKAGES that are missing
# (root, or sudo otherwise); `apt-get update` first, as a fresh machine has no lists.
define apt_install
	@missing=""; for p in $(1); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:$$missing"; \
	  SUDO=""; [ "$$(id -u)" = 0 ] || SUDO=sudo; \
	  $$SUDO apt-get update -q && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -q $$missing; \
	fi
endef

system-deps:
	$(call apt_install,$(DEB_PACKAGES))

demo: install system-deps
	$(HEARKIT) demo

test: install system-deps
	$(PY) -m pytest -m "not slow and not emulation" $(PYTEST_ARGS)

test-slow: install system-deps
	$(PY) -m pytest -m "slow" $(PYTEST_ARGS)

# The long fuzz run (docs/design.md §16): the `long` hypothesis profile, fresh random inputs each
# run, >= 10,000 examples over all targets (a few minutes here, niced: machines are shared); the
# summary prints the count per target. `make test` runs the same targets on the derandomized `ci` profile.
fuzz: install system-deps
	HEARKIT_FUZZ=long nice $(PY) -m pytest -m fuzz tests/fuzz $(PYTEST_ARGS)

# The emulated Raspberry Pi parity suite (docs/design.md §9): installs qemu-user-static and
# debootstrap if missing, builds the cached arm64 rootfs (~/.cache/hearkit/arm64,
# ~30 s with a warm network), then runs only the `emulation` tests (~1.5 min here).
ARM_DEB_PACKAGES := qemu-user-static debootstrap
test-arm: install system-deps
	$(call apt_install,$(ARM_DEB_PACKAGES))
	PIP="$(PY) -m pip" devices/emulation/build_rootfs.sh
	$(PY) -m pytest -m emulation $(PYTEST_ARGS)

# The wheel a device installs: `pip install hearkit-*.whl` there pulls only the runtime's
# dependencies (numpy, onnxruntime, soundfile, soxr, click). Built with the venv's setuptools.
wheel: install
	rm -rf dist/hearkit-*.whl build/lib build/bdist.*   # build/lib may hold a module since removed
	$(PY) -m build --wheel --no-isolation --outdir dist .
	@ls dist/hearkit-*.whl

clean:
	rm -rf $(VENV) build dist *.egg-info .pytest_cache
