"""A table of a TOML file checked against the settings it may hold, before anything reads it.

``config.toml``'s sections (``[training]``, ``[data]``, ``[world]``, ``[model]``, ``[queries]``,
``[retrieval]``) and a feature spec's ``[[feature]]`` entries are each read into a dataclass. A
dataclass takes whatever it is given, so a misspelt key was dropped or a traceback, and a value of
the wrong type was a TypeError deep in training (``learning_rate = "0.01"``) or, worse, read as
something else: ``position_bypass = "false"`` is a non-empty string, so it trained as true. Here every
key must be a field and every value must have its field's type (an integer is a number too, a TOML
list stands for a tuple), and a mistake is one ``ValueError`` naming the table, the key, the value
and what it should be. Ranges stay with each dataclass's ``__post_init__``, which knows them.
"""

from __future__ import annotations

import difflib
import json
import tomllib
import types
import typing
from collections.abc import Iterable, Mapping
from dataclasses import MISSING, fields
from typing import Any


class UnknownKeys(ValueError):
    """A table holding keys its reader does not know. The message is a config.toml's (a misspelt setting is
    the likely cause); a reader whose files are written by code, not by hand (model.json: a newer release's
    field), words it its own way from ``section``, ``unknown``, ``known`` and ``present`` (the keys the table
    holds)."""

    def __init__(self, message: str, section: str, unknown: list[str], known: list[str], present: list[str]) -> None:
        super().__init__(message)
        self.section, self.unknown, self.known, self.present = section, unknown, known, present


def built(config_class: type, values: Any, section: str, owner: str = "") -> Any:
    """``config_class(**values)`` once ``checked_table`` passes; a range its ``__post_init__`` refuses is
    said with ``section`` in front, so the user knows which table to edit."""
    checked = checked_table(config_class, values, section, owner)
    try:
        return config_class(**checked)
    except ValueError as error:
        raise ValueError(str(error) if str(error).startswith(section) else f"{section} {error}") from None


def checked_table(config_class: type, values: Any, section: str, owner: str = "") -> dict[str, Any]:
    """``values`` when they fit ``config_class``'s fields (see ``checked_values``); the fields without a
    default are required."""
    hints = typing.get_type_hints(config_class)
    settable = [f for f in fields(config_class) if f.init]
    required = [f.name for f in settable if f.default is MISSING and f.default_factory is MISSING]
    return checked_values({f.name: hints[f.name] for f in settable}, values, section, required, owner)


def checked_values(
    expected: Mapping[str, Any], values: Any, section: str, required: list[str] | None = None, owner: str = ""
) -> dict[str, Any]:
    """``values`` when it is a table whose keys are among ``expected`` (name -> type annotation), holding
    ``required``, each value of its type; ValueError naming ``section`` (e.g. ``[training]``) otherwise.
    ``owner`` says whose settings they are in the message for an unknown key (``[model]``: the kind)."""
    if not isinstance(values, dict):
        raise ValueError(f"{section} must be a table of settings, not {_shown(values)} ({_kind_of(values)})")
    unknown = sorted(set(values) - set(expected))
    if unknown:
        whose = f"not {owner} settings" if owner else "unknown"
        raise UnknownKeys(
            f"{section} settings {unknown} are {whose}{did_you_mean(unknown, expected)}; known: {sorted(expected)}",
            section,
            unknown,
            sorted(expected),
            sorted(values),
        )
    missing = [name for name in required or [] if name not in values]
    if missing:
        raise ValueError(f"{section} lacks {missing}")
    for key, value in values.items():
        if not _fits(value, expected[key]):
            if any(type(choice) is type(value) for choice in _choices(expected[key])):  # a value, not a type, wrong
                raise ValueError(
                    f"{section} {key} = {_shown(value)}: expected {_described(expected[key])}"
                    f"{_nearest_choice(value, _choices(expected[key]))}"
                )
            hint = (
                " (write it without quotes)"
                if isinstance(value, str) and _fits(_unquoted(value), expected[key])
                else ""
            )
            raise ValueError(
                f"{section} {key} = {_shown(value)}: expected {_described(expected[key])}, not {_kind_of(value)}{hint}"
            )
    return values


def _fits(value: Any, annotation: Any) -> bool:
    origin, arguments = typing.get_origin(annotation), typing.get_args(annotation)
    if annotation is Any or annotation is object:
        return True
    if annotation is type(None):
        return value is None
    if annotation is bool:
        return isinstance(value, bool)
    if annotation is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if annotation is float:
        return isinstance(value, int | float) and not isinstance(value, bool)
    if origin is typing.Literal:
        return any(value == choice and type(value) is type(choice) for choice in arguments)
    if origin in (types.UnionType, typing.Union):
        return any(_fits(value, member) for member in arguments)
    if origin in (list, tuple):
        if not isinstance(value, list | tuple):
            return False
        if origin is tuple and arguments and arguments[-1] is not Ellipsis:
            return len(value) == len(arguments) and all(map(_fits, value, arguments))
        return all(_fits(item, arguments[0]) for item in value) if arguments else True
    if origin is dict or annotation is dict:
        return isinstance(value, dict)
    return isinstance(value, origin or annotation)


def _choices(annotation: Any) -> list[Any]:
    """The values a ``Literal`` (or a union holding one) allows; none for another annotation."""
    origin, arguments = typing.get_origin(annotation), typing.get_args(annotation)
    if origin is typing.Literal:
        return list(arguments)
    if origin in (types.UnionType, typing.Union):
        return [choice for member in arguments for choice in _choices(member)]
    return []


def _nearest_choice(value: Any, choices: list[Any]) -> str:
    """`` (did you mean "categorical"?)`` for a misspelt choice of text; "" when none is close."""
    texts = [choice for choice in choices if isinstance(choice, str)]
    guess = difflib.get_close_matches(value, texts, n=1) if isinstance(value, str) else []
    return f" (did you mean {_shown(guess[0])}?)" if guess else ""


def _described(annotation: Any) -> str:
    """What a value of ``annotation`` is, in the words of a TOML file."""
    origin, arguments = typing.get_origin(annotation), typing.get_args(annotation)
    words = {bool: "true or false", int: "an integer", float: "a number", str: "a string", dict: "a table"}
    if annotation in words:
        return words[annotation]
    if origin is typing.Literal:
        return "one of " + ", ".join(_shown(choice) for choice in arguments)
    if origin in (types.UnionType, typing.Union):
        return " or ".join(_described(member) for member in arguments if member is not type(None))
    if origin in (list, tuple):
        if origin is tuple and arguments and arguments[-1] is not Ellipsis:
            return f"a list of {len(arguments)} " + _plural(arguments[0])
        return "a list of " + _plural(arguments[0]) if arguments else "a list"
    if origin is dict:
        return "a table"
    return getattr(annotation, "__name__", str(annotation))


def _plural(annotation: Any) -> str:
    plurals = {bool: "booleans", int: "integers", float: "numbers", str: "strings"}
    return plurals.get(annotation, f"values of {_described(annotation)}")


def _kind_of(value: Any) -> str:
    if isinstance(value, bool):
        return "a boolean"
    if value is None:  # JSON's null (model.json is checked here too)
        return "null"
    names = {int: "an integer", float: "a number with a fraction", str: "a string", list: "a list", dict: "a table"}
    return next((name for kind, name in names.items() if isinstance(value, kind)), type(value).__name__)


def _shown(value: Any) -> str:
    """``value`` as TOML spells it (JSON does for strings, numbers, booleans and lists of them)."""
    try:
        return json.dumps(value)
    except (TypeError, ValueError):
        return repr(value)


def _unquoted(text: str) -> Any:
    """What ``text`` would be without its quotes in TOML (``"false"`` -> false); the text itself when nothing."""
    try:
        return tomllib.loads(f"value = {text}")["value"]
    except tomllib.TOMLDecodeError:
        return text


def did_you_mean(unknown: list[str], known: Iterable[str]) -> str:
    """`` (did you mean 'hidden'?)`` for the known names closest to the unknown ones; "" when none is close."""
    guesses = {name: difflib.get_close_matches(name, list(known), n=1) for name in unknown}
    if len(unknown) == 1:
        said = [repr(guess[0]) for guess in guesses.values() if guess]
    else:
        said = [f"{guess[0]!r} instead of {name!r}" for name, guess in guesses.items() if guess]
    return f" (did you mean {', '.join(said)}?)" if said else ""
