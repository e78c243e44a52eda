"""Walking the schema's types: annotations, unions and their tags, models and their fields.

Both the error locator (pydantic's ``loc`` to a key path) and the override walker
(``--set a.b.c``) follow the :class:`~perpsim.scenario.Scenario` model's field types with these.
"""

from __future__ import annotations

import types
import typing
from typing import Annotated, Any, Literal

from pydantic import BaseModel

__all__ = ["is_model", "literal_values", "model_of", "strip_annotated", "union_members"]


def strip_annotated(tp: Any) -> Any:
    """``tp`` without its ``Annotated`` layers."""
    while typing.get_origin(tp) is Annotated:
        tp = typing.get_args(tp)[0]
    return tp


def union_members(tp: Any) -> tuple[Any, ...] | None:
    """The members of a union other than None, or None when ``tp`` is not a union."""
    origin = typing.get_origin(tp)
    if origin is typing.Union or origin is types.UnionType:
        return tuple(a for a in typing.get_args(tp) if a is not type(None))
    return None


def is_model(tp: Any) -> bool:
    """Whether ``tp`` is a pydantic model class."""
    return isinstance(tp, type) and issubclass(tp, BaseModel)


def literal_values(model: Any, field: str) -> tuple[Any, ...]:
    """The values of ``model.field`` when it is a ``Literal`` (a union tag), else ``()``."""
    info = model.model_fields.get(field)
    if info is None:
        return ()
    ann = strip_annotated(info.annotation)
    return typing.get_args(ann) if typing.get_origin(ann) is Literal else ()


def model_of(tp: Any) -> Any:
    """The model class ``tp`` stands for (through annotations and one-member unions), or None."""
    base = strip_annotated(tp)
    members = union_members(base)
    if members is not None and len(members) == 1:
        return model_of(members[0])
    return base if is_model(base) else None
