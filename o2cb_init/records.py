"""Data classes without the standard library's dataclasses module.

Importing dataclasses imports inspect, and with it ast, dis and tokenize:
about 9 ms of a `status` whose own work is 1 ms.  The package's records need
only what `dataclass` generates for them: ``__init__`` (defaults,
``field(default_factory=...)``, ``init=False``, ``__post_init__``), ``__repr__``,
``__eq__`` over the compared fields, ``frozen`` with its ``__hash__``, and
`replace` and `fields`.  That is what `dataclass` here makes, in the same
way, and mypy reads these classes as the standard library's (the import
under TYPE_CHECKING).  No inheritance between records, no ClassVar, no
keyword-only or slotted fields: the package uses none of them.
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from dataclasses import dataclass, field, fields, replace
else:

    class FrozenInstanceError(AttributeError):
        """Assigning to a field of a frozen record."""

    class _Missing:
        __slots__ = ()

        def __repr__(self) -> str:
            return "MISSING"

    MISSING = _Missing()

    class Field:
        __slots__ = ("name", "default", "default_factory", "init", "repr", "compare")

        def __init__(self, default, default_factory, init, repr, compare):  # noqa: A002
            self.name = ""
            self.default = default
            self.default_factory = default_factory
            self.init = init
            self.repr = repr
            self.compare = compare

    def field(*, default=MISSING, default_factory=MISSING, init=True, repr=True,  # noqa: A002
              compare=True):
        return Field(default, default_factory, init, repr, compare)

    def fields(record_or_class):
        return record_or_class.__record_fields__

    def replace(record, /, **changes):
        for item in record.__record_fields__:
            if item.init and item.name not in changes:
                changes[item.name] = getattr(record, item.name)
        return record.__class__(**changes)

    def dataclass(cls=None, /, *, frozen=False):
        def wrap(cls):
            return _make(cls, frozen)

        return wrap if cls is None else wrap(cls)

    def _make(cls, frozen):
        body = cls.__dict__
        made = []
        for name in body.get("__annotations__", {}):
            value = body.get(name, MISSING)
            item = value if isinstance(value, Field) else Field(value, MISSING, True, True, True)
            item.name = name
            if isinstance(value, Field):
                if item.default is MISSING:
                    delattr(cls, name)
                else:
                    setattr(cls, name, item.default)
            made.append(item)
        cls.__record_fields__ = tuple(made)
        scope = {"MISSING": MISSING, "setter": object.__setattr__}
        parameters, lines = [], []
        for item in made:
            value = item.name
            if item.default_factory is not MISSING:
                scope[f"factory_{item.name}"] = item.default_factory
                if item.init:
                    parameters.append(f"{item.name}=MISSING")
                    value = f"factory_{item.name}() if {item.name} is MISSING else {item.name}"
                else:
                    value = f"factory_{item.name}()"
            elif not item.init:
                if item.default is MISSING:
                    continue
                scope[f"default_{item.name}"] = item.default
                value = f"default_{item.name}"
            elif item.default is not MISSING:
                scope[f"default_{item.name}"] = item.default
                parameters.append(f"{item.name}=default_{item.name}")
            else:
                parameters.append(item.name)
            if item.init or item.default_factory is not MISSING or item.default is not MISSING:
                lines.append(f"setter(self, {item.name!r}, {value})" if frozen
                             else f"self.{item.name} = {value}")
        if "__post_init__" in body:
            lines.append("self.__post_init__()")
        source = (f"def __init__(self, {', '.join(parameters)}):\n"
                  + "".join(f" {line}\n" for line in lines or ["pass"]))
        exec(source, scope)  # noqa: S102 - built from the class's own field names
        _add(cls, "__init__", scope["__init__"])
        shown = tuple(item.name for item in made if item.repr)
        compared = tuple(item.name for item in made if item.compare)

        def __repr__(self):
            values = ", ".join(f"{name}={getattr(self, name)!r}" for name in shown)
            return f"{type(self).__qualname__}({values})"

        def __eq__(self, other):
            if other.__class__ is not self.__class__:
                return NotImplemented
            return (tuple(getattr(self, name) for name in compared)
                    == tuple(getattr(other, name) for name in compared))

        _add(cls, "__repr__", __repr__)
        explicit_hash = body.get("__hash__", MISSING) not in (MISSING, None) or (
            "__hash__" in body and "__eq__" not in body)
        _add(cls, "__eq__", __eq__)
        if frozen:
            def __setattr__(self, name, value):
                raise FrozenInstanceError(f"cannot assign to field {name!r}")

            def __delattr__(self, name):
                raise FrozenInstanceError(f"cannot delete field {name!r}")

            _add(cls, "__setattr__", __setattr__)
            _add(cls, "__delattr__", __delattr__)
            if not explicit_hash:
                cls.__hash__ = lambda self: hash(tuple(getattr(self, name) for name in compared))
        elif not explicit_hash:
            cls.__hash__ = None
        return cls

    def _add(cls, name, function):
        if name not in cls.__dict__:
            function.__qualname__ = f"{cls.__qualname__}.{name}"
            setattr(cls, name, function)


__all__ = ["dataclass", "field", "fields", "replace"]
