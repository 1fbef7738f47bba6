"""The parts a cluster stack is made of.

A stack module combines them and says in one place what its online,
offline and status are; no stack inherits from another.

- drivers.py: the kernel drivers and pseudo file systems (load, unload,
  the baseline record, the kernel generation, status of the drivers);
- o2nm.py: the o2nm cluster in configfs (register from a layout, timeouts,
  completeness, remove, status);
- control.py: control daemons of the userspace stacks;
- monitor.py: ocfs2-tools' o2hbmonitor.
- userdlm.py: userdlm domains under /dlm and the processes holding them.

Global heartbeat regions and userdlm domains are parts of the same kind.
"""
