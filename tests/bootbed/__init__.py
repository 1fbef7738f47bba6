"""The boot bed: a Debian 12 disk image with systemd as PID 1, ocfs2-tools and
our .deb installed, booted under qemu (see conftest.py and tests/README.md)."""
