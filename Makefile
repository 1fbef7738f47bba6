# Two entry points for a fresh Debian 12 machine (run as root):
#   make demo   boot Debian's kernel under qemu and run the whole o2cb story
#   make test   install what the tests need, then run all of them
PYTHON ?= python3

.PHONY: setup test test-fast demo lint bench bench-realkernel

setup:
	@if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		bash .ci/install-realkernel; \
	else \
		echo "not root or no apt-get: the real-kernel tests will be skipped"; \
	fi
	$(PYTHON) -m pip install --quiet -e '.[dev]'

test: setup
	$(PYTHON) -m pytest

test-fast:
	$(PYTHON) -m pytest -m "not realkernel"

demo: setup
	$(PYTHON) -m tests.realkernel.demo

# Ours against Debian's /etc/init.d/o2cb on a fake kernel (root; gcc, ocfs2-tools)
bench:
	$(PYTHON) -m benchmarks $(BENCH_ARGS)

# The same comparison on Debian's real kernel under qemu: ratios only
bench-realkernel:
	$(PYTHON) -m benchmarks.realkernel $(BENCH_ARGS)

lint:
	ruff check .
	mypy
