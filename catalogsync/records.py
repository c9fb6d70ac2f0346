"""``@record``: a dataclass whose methods are shared functions, not generated code.

``@dataclass`` writes each class's ``__init__``, ``__repr__``, ``__eq__``, ``__hash__``
and (frozen) ``__setattr__``/``__delattr__`` as source text and compiles it: on Python
3.11 about 0.25 ms a method, 1.5 ms a class. The read models alone (18 classes) made
`catalogsync status` spend 27 ms of its 0.2 s creating classes it then used for a
dozen rows. A ``record`` is still a dataclass (``dataclasses.fields``, ``asdict``,
``replace`` and ``is_dataclass`` work, and type checkers see one: ``dataclass_transform``),
but its methods are the functions below, which read the field names the class keeps.

For classes built a few times per read or per command (read models, settings), where
creating the class costs more than all its instances. Not for a hot path: the shared
``__init__`` costs about 1 us more an instance than a generated one.

What ``@dataclass`` does that ``record`` does not: ``field(init=False)``, ``InitVar``,
``kw_only``, ``__post_init__``, ``order`` and per-field ``repr``/``compare`` are refused
at class creation (none is used); a recursive ``repr`` is not guarded.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any, TypeVar, dataclass_transform, overload

T = TypeVar("T")

# What a class keeps for the shared methods: its field names, and per field without a
# value given the default (or its factory).
_NAMES = "__record_names__"
_NAME_SET = "__record_name_set__"
_DEFAULTS = "__record_defaults__"
_FACTORIES = "__record_factories__"


def _init(self: Any, *args: Any, **kwargs: Any) -> None:
    cls = type(self)
    if not args:
        names_given: frozenset[str] = getattr(cls, _NAME_SET)
        if kwargs.keys() == names_given:
            self.__dict__.update(kwargs)  # every field by name: the common call, kept short
            return
        if names_given.issuperset(kwargs):  # by name, some left to their defaults
            values = {**getattr(cls, _DEFAULTS), **kwargs}
            for name, factory in getattr(cls, _FACTORIES).items():
                if name not in kwargs:
                    values[name] = factory()
            if len(values) == len(names_given):
                self.__dict__.update(values)
                return
    names: tuple[str, ...] = getattr(cls, _NAMES)
    if len(args) > len(names):
        raise TypeError(
            f"{cls.__name__}() takes {len(names)} positional arguments but {len(args)} were given"
        )
    values = dict(zip(names, args, strict=False))
    for key, value in kwargs.items():
        if key in values:
            raise TypeError(f"{cls.__name__}() got multiple values for argument {key!r}")
        values[key] = value
    if len(values) != len(names):
        defaults: dict[str, Any] = getattr(cls, _DEFAULTS)
        factories: dict[str, Callable[[], Any]] = getattr(cls, _FACTORIES)
        for name in names:
            if name in values:
                continue
            if name in defaults:
                values[name] = defaults[name]
            elif name in factories:
                values[name] = factories[name]()
            else:
                raise TypeError(f"{cls.__name__}() missing required argument: {name!r}")
        if len(values) != len(names):
            unknown = next(key for key in kwargs if key not in names)
            raise TypeError(f"{cls.__name__}() got an unexpected keyword argument {unknown!r}")
    # Field order, as a generated __init__ leaves it; not through __setattr__ (frozen).
    self.__dict__.update((name, values[name]) for name in names)


def _values(self: Any) -> tuple[Any, ...]:
    fields = self.__dict__
    return tuple(fields[name] for name in getattr(type(self), _NAMES))


def _repr(self: Any) -> str:
    fields = ", ".join(
        f"{name}={value!r}"
        for name, value in zip(getattr(self, _NAMES), _values(self), strict=True)
    )
    return f"{type(self).__qualname__}({fields})"


def _eq(self: Any, other: Any) -> Any:
    if other.__class__ is not self.__class__:
        return NotImplemented
    return _values(self) == _values(other)


def _hash(self: Any) -> int:
    return hash(_values(self))


def _frozen_setattr(self: Any, name: str, value: Any) -> None:
    raise dataclasses.FrozenInstanceError(f"cannot assign to field {name!r}")


def _frozen_delattr(self: Any, name: str) -> None:
    raise dataclasses.FrozenInstanceError(f"cannot delete field {name!r}")


def _make(cls: type[T], frozen: bool) -> type[T]:
    if "__post_init__" in cls.__dict__:
        raise TypeError(f"{cls.__name__}: a record has no __post_init__")
    # Fields, __dataclass_fields__ and __match_args__ as @dataclass makes them; no code.
    cls = dataclasses.dataclass(init=False, repr=False, eq=False)(cls)
    names: list[str] = []
    defaults: dict[str, Any] = {}
    factories: dict[str, Callable[[], Any]] = {}
    for f in dataclasses.fields(cls):  # type: ignore[arg-type]
        if not (f.init and f.repr and f.compare and f.kw_only is not True):
            raise TypeError(f"{cls.__name__}.{f.name}: a record field takes part in everything")
        names.append(f.name)
        if f.default is not dataclasses.MISSING:
            defaults[f.name] = f.default
        elif f.default_factory is not dataclasses.MISSING:
            factories[f.name] = f.default_factory
    setattr(cls, _NAMES, tuple(names))
    setattr(cls, _NAME_SET, frozenset(names))
    setattr(cls, _DEFAULTS, defaults)
    setattr(cls, _FACTORIES, factories)
    methods: dict[str, Any] = {"__init__": _init, "__repr__": _repr, "__eq__": _eq}
    if frozen:
        methods.update(__hash__=_hash, __setattr__=_frozen_setattr, __delattr__=_frozen_delattr)
    else:
        methods["__hash__"] = None  # mutable and compared by value: unhashable, as @dataclass
    for name, method in methods.items():
        setattr(cls, name, method)
    return cls


def assemble(cls: type[T], values: dict[str, Any]) -> T:
    """A record from a value for every one of its fields, without ``__init__``'s argument
    binding: for the ones built per row (read models, ``JobItem.from_row``), where that
    binding would cost more than the generated ``__init__`` it replaces. The caller
    gives every field and nothing else (tests check each such builder).
    """
    model = object.__new__(cls)
    model.__dict__.update(values)
    return model


@overload
def record(cls: type[T], /) -> type[T]: ...
@overload
def record(*, frozen: bool = False) -> Callable[[type[T]], type[T]]: ...


@dataclass_transform(field_specifiers=(dataclasses.field,))
def record(cls: type[T] | None = None, /, *, frozen: bool = False) -> Any:
    """A dataclass (``@record`` or ``@record(frozen=True)``) without generated methods."""
    if cls is None:
        return lambda cls: _make(cls, frozen)
    return _make(cls, frozen)
