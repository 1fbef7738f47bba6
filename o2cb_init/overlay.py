"""The planned state: the machine as a plan's earlier changes will leave it.

While a verb is planned no change is made, yet its later steps must be
planned as the earlier ones will leave the machine.  System answers every
read (exists, is_dir, listdir, file and attribute values) through this
overlay: directories made and removed, files written, whether a daemon was
started or stopped.  Only the kernel model (model.py) writes to it: it
knows what each change leaves, /proc/modules and /proc/mounts included.
Lookups are by path, so a plan of many nodes costs no more per node than
one of two.
"""

from __future__ import annotations


def _parent(path: str) -> str:
    return path.rsplit("/", 1)[0]


class PlannedState:
    def __init__(self) -> None:
        self.values: dict[str, str] = {}  # files and attributes written
        self.created_dirs: set[str] = set()
        self.removed: set[str] = set()  # removed paths: everything under them is gone
        self._children: dict[str, set[str]] = {}  # directory -> names made in it
        self.started: set[str] = set()  # daemon programs
        self.stopped: set[str] = set()

    def __bool__(self) -> bool:
        return bool(self.values or self.created_dirs or self.removed or self.started
                    or self.stopped)

    # -- reads -----------------------------------------------------------------

    def is_made(self, path: str) -> bool:
        return path in self.created_dirs or path in self.values

    def is_away(self, path: str) -> bool:
        """Under a removed path, and not made again since."""
        if not self.removed or self.is_made(path):
            return False
        probe = path
        while probe:
            if probe in self.removed:
                return True
            probe = _parent(probe)
        return False

    def children(self, directory: str) -> set[str]:
        """Names made directly in ``directory``."""
        return self._children.get(directory, set())

    # -- what the model enters -------------------------------------------------

    def make_dir(self, path: str) -> None:
        self._made(path)
        self.created_dirs.add(path)

    def write(self, path: str, value: str) -> None:
        self._made(path)
        self.values[path] = value

    def remove(self, path: str) -> None:
        """The path is gone, with everything under it."""
        for made in [p for p in (*self.created_dirs, *self.values) if _under(p, path)]:
            self.created_dirs.discard(made)
            self.values.pop(made, None)
            self._children.get(_parent(made), set()).discard(made.rsplit("/", 1)[-1])
        self.removed.add(path)

    def _made(self, path: str) -> None:
        """A path made (again): neither it nor the directories above it are gone."""
        if self.removed:
            probe = path
            while probe:
                self.removed.discard(probe)
                probe = _parent(probe)
        parent, _, name = path.rpartition("/")
        self._children.setdefault(parent, set()).add(name)

    def start(self, program: str) -> None:
        self.stopped.discard(program)
        self.started.add(program)

    def stop(self, program: str) -> None:
        self.started.discard(program)
        self.stopped.add(program)


def _under(path: str, directory: str) -> bool:
    return path == directory or path.startswith(f"{directory}/")
