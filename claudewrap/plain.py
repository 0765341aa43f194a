"""Plain data classes without :mod:`dataclasses`: ``@plain`` and ``@plain(frozen=True)``.

The classes every reader loads (the journal record, the report's rows, filters,
prices, plan-limit snapshots) were dataclasses, and ``import dataclasses`` imports
:mod:`inspect` (with ast, dis, tokenize, ...): 10.8 ms of the 66 ms of imports of a
`claudewrap statusline` call that records a new cost (``python -S -X importtime``,
2 cores; the goal for the whole call is 50 ms beyond the interpreter's start).
This builds the same methods for the subset of dataclasses those classes use:

- fields from the class's own annotations, in order, each with its class-level
  default, or :func:`field` (``default``, ``default_factory``, ``repr``, ``compare``);
- ``__init__`` (generated source, as dataclasses does: as fast to call),
  ``__repr__``, ``__eq__`` (same class, fields in order), ``__hash__`` = None
  unless ``frozen``; ``frozen=True`` refuses assignment (:class:`FrozenInstanceError`,
  an AttributeError, as with dataclasses) and hashes the fields;
- :func:`fields` (the names) and :func:`replace`.

No inheritance, ``__post_init__``, ``ClassVar``, ordering or slots: a class that
needs them uses dataclasses (the decorator refuses a base class with fields).
"""

from __future__ import annotations

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (3 ms)
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any, TypeVar

    T = TypeVar("T")

_MISSING = object()
_FIELDS = "__plain_fields__"


class FrozenInstanceError(AttributeError):
    """Assignment to a field of a frozen plain class."""


class Field:
    __slots__ = ("compare", "default", "default_factory", "name", "repr")

    def __init__(self, default: Any = _MISSING, default_factory: Any = _MISSING,
                 repr: bool = True, compare: bool = True) -> None:
        self.name = ""
        self.default = default
        self.default_factory = default_factory
        self.repr = repr
        self.compare = compare


def field(*, default: Any = _MISSING, default_factory: Callable[[], Any] | Any = _MISSING,
          repr: bool = True, compare: bool = True) -> Any:
    """As dataclasses.field, for :func:`plain` classes."""
    return Field(default, default_factory, repr, compare)


def fields(obj: Any) -> tuple[str, ...]:
    """The field names of a plain class or instance, in order."""
    return tuple(f.name for f in getattr(obj, _FIELDS))


def replace(obj: T, **changes: Any) -> T:
    """A copy of ``obj`` with ``changes`` (as dataclasses.replace)."""
    values = {f.name: getattr(obj, f.name) for f in getattr(obj, _FIELDS)}
    unknown = set(changes) - set(values)
    if unknown:
        raise TypeError(f"{type(obj).__name__} has no field {min(unknown)!r}")
    values.update(changes)
    return type(obj)(**values)


def _build(cls: type, frozen: bool) -> type:
    for base in cls.__mro__[1:]:
        if hasattr(base, _FIELDS):
            raise TypeError(f"{cls.__name__}: a plain class cannot inherit fields")
    own: list[Field] = []
    # Not inspect.get_annotations: inspect is what this module avoids importing.
    for name in cls.__dict__.get("__annotations__", {}):  # noqa: RUF063
        value = cls.__dict__.get(name, _MISSING)
        spec = value if isinstance(value, Field) else Field(default=value)
        spec.name = name
        if isinstance(value, Field):
            if spec.default is _MISSING:
                delattr(cls, name)
            else:
                setattr(cls, name, spec.default)
        own.append(spec)
    args, body, env = [], [], {"_MISSING": _MISSING}
    seen_default = False
    for f in own:
        if f.default_factory is not _MISSING:
            env[f"_f_{f.name}"] = f.default_factory
            args.append(f"{f.name}=_MISSING")
            value = f"_f_{f.name}() if {f.name} is _MISSING else {f.name}"
            seen_default = True
        elif f.default is not _MISSING:
            env[f"_d_{f.name}"] = f.default
            args.append(f"{f.name}=_d_{f.name}")
            value = f.name
            seen_default = True
        else:
            if seen_default:
                raise TypeError(f"{cls.__name__}: field {f.name} without a default follows one")
            args.append(f.name)
            value = f.name
        body.append(f"_set(self, {f.name!r}, {value})" if frozen
                    else f"self.{f.name} = {value}")
    env["_set"] = object.__setattr__
    source = (f"def __init__(self, {', '.join(args)}):\n    "
              + ("\n    ".join(body) or "pass") + "\n")
    exec(source, env)  # noqa: S102 - our own generated source, as dataclasses does
    init = env["__init__"]
    init.__qualname__ = f"{cls.__qualname__}.__init__"  # type: ignore[attr-defined]
    cls.__init__ = init  # type: ignore[misc]

    shown = [f.name for f in own if f.repr]
    compared = tuple(f.name for f in own if f.compare)

    def __repr__(self: Any) -> str:
        inner = ", ".join(f"{n}={getattr(self, n)!r}" for n in shown)
        return f"{type(self).__qualname__}({inner})"

    def __eq__(self: Any, other: Any) -> bool:
        if other.__class__ is not self.__class__:
            return NotImplemented
        return all(getattr(self, n) == getattr(other, n) for n in compared)

    cls.__repr__ = __repr__  # type: ignore[method-assign,assignment]
    cls.__eq__ = __eq__  # type: ignore[method-assign,assignment]
    if frozen:
        def __hash__(self: Any) -> int:
            return hash(tuple(getattr(self, n) for n in compared))

        def __setattr__(self: Any, name: str, value: Any) -> None:
            raise FrozenInstanceError(f"cannot assign to field {name!r}")

        def __delattr__(self: Any, name: str) -> None:
            raise FrozenInstanceError(f"cannot delete field {name!r}")

        cls.__hash__ = __hash__  # type: ignore[method-assign,assignment]
        cls.__setattr__ = __setattr__  # type: ignore[method-assign,assignment]
        cls.__delattr__ = __delattr__  # type: ignore[method-assign,assignment]
    else:
        cls.__hash__ = None  # type: ignore[assignment]
    setattr(cls, "__match_args__", tuple(f.name for f in own))  # noqa: B010
    setattr(cls, _FIELDS, tuple(own))
    return cls


if TYPE_CHECKING:  # type checkers read it as they read dataclasses (PEP 681)
    from typing_extensions import dataclass_transform  # typing's from 3.11

    @dataclass_transform(field_specifiers=(field, Field))
    def plain(cls: type[T] | None = None, *, frozen: bool = False) -> Any: ...
else:
    def plain(cls=None, *, frozen=False):
        """Decorate a class as a (frozen) plain data class; see the module's text."""
        if cls is None:
            return lambda c: _build(c, frozen)
        return _build(cls, frozen)
