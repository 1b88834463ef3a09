"""Typed chapter parameters: the first cell after a chapter's ``parameters`` cell checks what
papermill passed and gives every parameter its type.

``papermill -p name value`` passes ``true``/``false`` and lists as text (``-p seeds "[0, 1]"``);
``-y`` passes YAML. A rule turns such a value into the type the chapter's parameters cell
declares, or refuses it: `ParameterError`, one line naming the parameter, the value and what is
allowed. Booleans are ``true`` or ``false`` in any case (or Python's bools), nothing else; a list is
a Python list, YAML/JSON text of one (``[0.2, 0.4]``), or a single item.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import yaml

from mpm.runs.studies import study_settings


class ParameterError(ValueError):
    """A chapter parameter the chapter cannot use; its message is one line."""


class _Refused(Exception):
    """Raised by a rule's conversion when a value does not fit."""


@dataclass(frozen=True)
class Rule:
    """What a parameter accepts: ``allowed`` says it in words, ``convert`` returns the typed value
    or raises `_Refused`."""

    allowed: str
    convert: Callable[[Any], Any]


def flag() -> Rule:
    """``true`` or ``false`` in any case, or a bool."""

    def convert(value: Any) -> bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.strip().lower() in ("true", "false"):
            return value.strip().lower() == "true"
        raise _Refused

    return Rule("true or false (any case)", convert)


def _bounds(low: float | None, high: float | None) -> str:
    if low is not None and high is not None:
        return f" in [{low:g}, {high:g}]"
    return f" ≥ {low:g}" if low is not None else ""


def _within(value: float, low: float | None, high: float | None) -> bool:
    return (low is None or value >= low) and (high is None or value <= high)


def integer(low: int | None = None, high: int | None = None) -> Rule:
    """An integer (not a bool) in ``[low, high]`` where given."""

    def convert(value: Any) -> int:
        if isinstance(value, int) and not isinstance(value, bool) and _within(value, low, high):
            return value
        raise _Refused

    return Rule(f"an integer{_bounds(low, high)}", convert)


def number(low: float | None = None, high: float | None = None) -> Rule:
    """A finite number (not a bool) in ``[low, high]`` where given."""

    def convert(value: Any) -> float:
        if (isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
                and _within(value, low, high)):
            return float(value)
        raise _Refused

    return Rule(f"a number{_bounds(low, high)}", convert)


def text() -> Rule:
    """Any string."""

    def convert(value: Any) -> str:
        if isinstance(value, str):
            return value
        raise _Refused

    return Rule("a string", convert)


def one_of(choices: Iterable[Any]) -> Rule:
    """One of ``choices``, of the same type (``"3"`` is not 3, ``True`` is not 1)."""
    known = list(choices)

    def convert(value: Any) -> Any:
        if any(type(value) is type(choice) and value == choice for choice in known):
            return value
        raise _Refused

    return Rule(f"one of {known}", convert)


def study_setting(study: str) -> Rule:
    """The label of one of study ``study``'s settings, as its tables print it."""
    return one_of(s.label for s in study_settings(study))


def _items(value: Any) -> list[Any]:
    """The items of a list parameter: a list or tuple, YAML text of a list, or one item."""
    if isinstance(value, (list, tuple)):
        return list(value)
    if isinstance(value, str) and value.strip().startswith("["):
        try:
            parsed = yaml.safe_load(value)
        except yaml.YAMLError:
            raise _Refused from None
        if isinstance(parsed, list):
            return parsed
        raise _Refused
    return [value]


def list_of(item: Rule, empty: bool = False) -> Rule:
    """A list whose every item ``item`` accepts; non-empty unless ``empty`` (a part a chapter may leave out)."""

    def convert(value: Any) -> list[Any]:
        items = _items(value)
        if not items and not empty:
            raise _Refused
        return [item.convert(one) for one in items]

    size = "a list ([] for none)" if empty else "a non-empty list"
    return Rule(f"{size} (a YAML list such as [x, y], or one item), each item {item.allowed}", convert)


def typed_parameters(namespace: Mapping[str, Any], **rules: Rule) -> dict[str, Any]:
    """Each parameter named in ``rules``, read from ``namespace`` (a chapter's ``globals()``) and
    typed by its rule; `ParameterError` for the first one its rule refuses."""
    typed = {}
    for name, rule in rules.items():
        value = namespace[name]
        try:
            typed[name] = rule.convert(value)
        except _Refused:
            raise ParameterError(f"chapter parameter {name} = {value!r} is not allowed: "
                                 f"expected {rule.allowed}") from None
    return typed
