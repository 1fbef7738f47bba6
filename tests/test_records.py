"""o2cb_init.records makes what the standard library's dataclass makes, for
the kinds of record the package defines: the same class body, decorated by
each, must behave the same."""

from __future__ import annotations

import dataclasses

import pytest

from o2cb_init import records


def bodies(decorate, field):  # noqa: ANN001, ANN202 - one class body under either maker
    @decorate(frozen=True)
    class Frozen:
        name: str
        number: int = 3
        items: tuple[str, ...] = field(default=())
        line: int = field(default=0, compare=False)

    @decorate
    class Plain:
        """A mutable record with factories and a post-init."""

        first: str
        listed: list[str] = field(default_factory=list)
        later: int = field(init=False)
        hidden: str | None = field(default=None, init=False, repr=False)

        def __post_init__(self) -> None:
            self.later = len(self.first)

    return Frozen, Plain


STD = bodies(dataclasses.dataclass, dataclasses.field)
OURS = bodies(records.dataclass, records.field)


@pytest.mark.parametrize("made", [STD, OURS], ids=["dataclasses", "records"])
def test_a_record_behaves_as_a_dataclass(made: tuple[type, type]) -> None:
    frozen_class, plain_class = made
    one, same = frozen_class("a", items=("x",), line=1), frozen_class("a", 3, ("x",), line=9)
    assert one == same and hash(one) == hash(same) and one != frozen_class("b")
    assert repr(one).endswith(".Frozen(name='a', number=3, items=('x',), line=1)")
    with pytest.raises(AttributeError, match="cannot assign to field 'name'"):
        one.name = "b"  # type: ignore[misc]
    changed = (dataclasses if made is STD else records).replace(one, number=4)
    assert (changed.name, changed.number, changed.line) == ("a", 4, 1)
    assert [item.name for item in (dataclasses if made is STD else records).fields(one)] == [
        "name", "number", "items", "line"]
    plain, other = plain_class("abc"), plain_class("abc")
    plain.listed.append("x")
    assert other.listed == [] and plain.later == 3 and plain.hidden is None
    assert repr(other).endswith(".Plain(first='abc', listed=[], later=3)")
    assert plain != other and plain_class("abc") == other
    assert plain_class.__hash__ is None
    with pytest.raises(TypeError):
        frozen_class()
    with pytest.raises(TypeError):
        plain_class("a", later=1)


def test_the_package_never_imports_dataclasses_for_its_records() -> None:
    import subprocess
    import sys
    from pathlib import Path

    repo = str(Path(records.__file__).parents[1])
    code = (f"import sys; sys.path.insert(0, {repo!r}); before = set(sys.modules); "
            "import o2cb_init.service, o2cb_init.stacks.o2cb, o2cb_init.plan; "
            "print(sorted({'dataclasses', 'inspect'} & (set(sys.modules) - before)))")
    done = subprocess.run([sys.executable, "-I", "-c", code], capture_output=True, text=True,
                          check=True)
    assert done.stdout.strip() == "[]"
