# Two entry points for a fresh Debian 12 machine (run as root):
#   make demo   install only what the demo needs (qemu, busybox, kmod,
#               ocfs2-tools, this machine's Debian kernel, virtme-ng, the
#               package with click, configobj and psutil), then boot that
#               kernel under qemu and run the whole o2cb story
#   make test   install everything the tests need (make setup: three kernels,
#               the boot bed's and package build's tools, the dev tools),
#               then run all of them
# and for packagers:
#   make deb    build dist/o2cb-init_VERSION_all.deb with debhelper and pybuild
PYTHON ?= python3
DEB_BUILD_DIR := build/deb

.PHONY: setup demo-setup test test-fast test-bootbed demo lint deb bench bench-realkernel bench-bootbed

setup:
	@if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		bash .ci/install-realkernel; \
		bash .ci/install-bootbed; \
	else \
		echo "not root or no apt-get: the real-kernel and boot-bed tests will be skipped"; \
	fi
	$(PYTHON) -m pip install --quiet -e '.[dev]'
	$(PYTHON) -m pip install --quiet -U click configobj psutil

# pytest exits 5 when it collected nothing: that is a failure, not a pass.
PYTEST_NONEMPTY = rc=0; $(PYTHON) -m pytest $(1) || rc=$$?; \
	if [ $$rc = 5 ]; then echo "pytest collected no tests" >&2; fi; exit $$rc

# The fast tests run on PYTEST_JOBS processes (pytest-xdist); the qemu beds
# in one process of their own, since their session fixtures share boots.
PYTEST_JOBS ?= 2
FAST = -m "not realkernel and not bootbed"
QEMU = -m "realkernel or bootbed"
# What the suite runs on: the interpreter and its click, configobj and psutil.
SHOW_VERSIONS = import importlib.metadata as m, platform, sys; \
	print("testing on python", platform.python_version(), "(" + sys.executable + "),", \
	      ", ".join(name + " " + m.version(name) for name in ("click", "configobj", "psutil")))

# Both invocations always run; either one failing fails the target.
test: setup
	@$(PYTHON) -c '$(SHOW_VERSIONS)'
	@rc=0; \
	($(call PYTEST_NONEMPTY,-n $(PYTEST_JOBS) $(FAST))) || rc=1; \
	($(call PYTEST_NONEMPTY,$(QEMU))) || rc=1; \
	exit $$rc

test-fast:
	$(PYTHON) -m pytest -n $(PYTEST_JOBS) $(FAST)

test-bootbed:
	@$(call PYTEST_NONEMPTY,-m bootbed)

# The demo runs ours on one node of the bookworm kernel: no reference script's
# psmisc, no two-node network (iproute2), no compiler, no other kernel.
demo-setup:
	@if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		O2CB_RK_SUITES=bookworm bash .ci/install-realkernel --demo; \
	else \
		echo "not root or no apt-get: the demo's prerequisites cannot be installed"; \
	fi
	$(PYTHON) -m pip install --quiet -e .

demo: demo-setup
	$(PYTHON) -m tests.realkernel.demo

# Ours against Debian's /etc/init.d/o2cb on a fake kernel (root; gcc, ocfs2-tools)
bench:
	$(PYTHON) -m benchmarks $(BENCH_ARGS)

# The same comparison on Debian's real kernel under qemu: ratios only
bench-realkernel:
	$(PYTHON) -m benchmarks.realkernel $(BENCH_ARGS)

# Start and stop timed in a booted Debian 12 (the boot bed's image): ours and
# the reference's init scripts in turn, in one boot
bench-bootbed:
	$(PYTHON) -m benchmarks.bootbed $(BENCH_ARGS)

lint:
	ruff check .
	mypy

# dpkg-buildpackage writes its results next to the source tree, so the tree
# is copied into build/deb first; the .deb lands in dist/.
deb:
	rm -rf $(DEB_BUILD_DIR)
	mkdir -p $(DEB_BUILD_DIR)/src dist
	tar -c --exclude=./.git --exclude=./.venv --exclude=./build --exclude=./dist \
		--exclude='*.egg-info' --exclude=__pycache__ --exclude=./.pytest_cache \
		--exclude=./.mypy_cache --exclude=./.ruff_cache --exclude=./.hypothesis . \
		| tar -x -C $(DEB_BUILD_DIR)/src
	# Debian's own python3, whatever interpreter the caller has first on PATH.
	cd $(DEB_BUILD_DIR)/src && PATH=/usr/sbin:/usr/bin:/sbin:/bin dpkg-buildpackage -b -us -uc
	rm -f dist/o2cb-init_*.deb
	cp $(DEB_BUILD_DIR)/o2cb-init_*.deb dist/
	@ls dist/o2cb-init_*.deb
