"""Ours against Debian's /etc/init.d/o2cb on the same fake kernel: ``python3 -m benchmarks``."""
