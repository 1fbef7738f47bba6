"""The parts a cluster stack is made of.

A stack module (stacks/) lists the parts it uses; the skeleton every stack
shares is stacks/base.py.  Each part takes the run's context and adds its
changes as named steps (plan.py).

- drivers.py: the kernel drivers and pseudo file systems (load, unload,
  the baseline record, the kernel generation, status of the drivers);
- o2nm.py: the o2nm cluster in configfs (register from a layout, timeouts,
  completeness as typed findings, remove); o2nm_status.py shows it;
- regions.py: the heartbeat mode and the global heartbeat regions;
- control.py: control daemons of the userspace stacks;
- monitor.py: ocfs2-tools' o2hbmonitor;
- userdlm.py: userdlm domains under /dlm and the processes holding them.
"""
