"""Records that cross between processes (Ray pickles them), sent as their class and values.

Pickle's default for a slotted dataclass walks its fields in Python on both sides, ~3x the cost
of a constructor call with a tuple; these records cross for every notification, at every hop.
"""

from __future__ import annotations

from dataclasses import fields
from operator import attrgetter
from typing import Any, TypeVar

T = TypeVar("T")


def wire(cls: type[T]) -> type[T]:
    """Pickle `cls` (a dataclass whose fields are all `__init__` arguments) as `cls(*values)`."""
    names = [f.name for f in fields(cls)]  # type: ignore[arg-type]
    if not all(f.init for f in fields(cls)):  # type: ignore[arg-type]
        raise TypeError(f"{cls.__name__}: every field must be an __init__ argument")
    values = attrgetter(*names)

    def reduce(self: Any) -> tuple[type[T], tuple[Any, ...]]:
        found = values(self)
        return cls, found if len(names) > 1 else (found,)

    cls.__reduce__ = reduce  # type: ignore[method-assign]
    return cls
