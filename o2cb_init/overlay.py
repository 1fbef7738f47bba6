"""What a plan's changes would leave: the machine as the plan sees it.

While a verb is planned no change is made, yet its later steps must be
planned as the earlier ones will leave the machine: after a planned
`modprobe` the module counts as loaded, after a planned `rmdir` the
directory counts as gone.  System answers every question about paths
(exists, is_dir, listdir, attribute and file values) through this
overlay, and the kernel model asks it which modules and mounts the plan
loaded, removed, mounted or unmounted.  It is emptied before the plan is
carried out, so there it changes no answer.
"""

from __future__ import annotations

from dataclasses import dataclass, field


def _under(path: str, directory: str) -> bool:
    return path == directory or path.startswith(f"{directory}/")


@dataclass
class PlannedState:
    created_dirs: set[str] = field(default_factory=set)
    values: dict[str, str] = field(default_factory=dict)  # files and attributes written
    removed_paths: set[str] = field(default_factory=set)
    loaded_modules: set[str] = field(default_factory=set)
    removed_modules: set[str] = field(default_factory=set)
    mounted: dict[str, str] = field(default_factory=dict)  # mount point -> fstype
    unmounted: set[str] = field(default_factory=set)
    started: set[str] = field(default_factory=set)  # daemon programs
    stopped: set[str] = field(default_factory=set)

    def __bool__(self) -> bool:
        return any((self.created_dirs, self.values, self.removed_paths, self.loaded_modules,
                    self.removed_modules, self.mounted, self.unmounted, self.started,
                    self.stopped))

    # -- paths ---------------------------------------------------------------

    def is_away(self, path: str) -> bool:
        """Under a directory the plan removed (and did not make again)."""
        return any(_under(path, gone) for gone in self.removed_paths) and not self.is_made(path)

    def is_made(self, path: str) -> bool:
        return path in self.created_dirs or path in self.values

    def make_dir(self, path: str) -> None:
        self._restore(path)
        self.created_dirs.add(path)

    def write(self, path: str, value: str) -> None:
        self._restore(path)
        self.values[path] = value

    def remove(self, path: str) -> None:
        """The path is gone, with everything under it."""
        self.created_dirs = {made for made in self.created_dirs if not _under(made, path)}
        self.values = {made: v for made, v in self.values.items() if not _under(made, path)}
        self.removed_paths.add(path)

    def _restore(self, path: str) -> None:
        """A path made again: neither it nor the directories above it are gone."""
        self.removed_paths = {gone for gone in self.removed_paths if not _under(path, gone)}

    def children(self, directory: str) -> set[str]:
        """Names the plan made directly in ``directory``."""
        made = self.created_dirs | set(self.values)
        return {path.rsplit("/", 1)[-1] for path in made
                if path.rsplit("/", 1)[0] == directory}

    # -- modules and mounts ----------------------------------------------------

    def load(self, modules: set[str]) -> None:
        self.loaded_modules |= modules
        self.removed_modules -= modules

    def remove_module(self, name: str) -> None:
        self.loaded_modules.discard(name)
        self.removed_modules.add(name)

    def mount(self, mountpoint: str, fstype: str) -> None:
        self.unmounted.discard(mountpoint)
        self.mounted[mountpoint] = fstype

    def umount(self, mountpoint: str) -> None:
        self.mounted.pop(mountpoint, None)
        self.unmounted.add(mountpoint)

    # -- daemons ---------------------------------------------------------------

    def start(self, program: str) -> None:
        self.stopped.discard(program)
        self.started.add(program)

    def stop(self, program: str) -> None:
        self.started.discard(program)
        self.stopped.add(program)
