"""o2cb: bring the OCFS2 cluster stack up at boot and down at shutdown."""

__version__ = "0.1.0"
