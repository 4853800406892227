"""Typed configs at the boundary: a config node (Hydra `DictConfig`, a dict) -> a dataclass.

Every entry point turns its slice of the Hydra config into a frozen dataclass with this, so
that a typo, a wrong type or a value out of range is one `ConfigError` line naming the key
(`stage.max_steps must be an integer, got 'abc'`) before any work starts, and nothing deeper
than the entry point reads the raw config. Range checks live in each dataclass's
`__post_init__`, next to the field they guard.
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from typing import Any, TypeVar

from vidchat.errors import ConfigError
from vidchat.utils.config import to_plain

T = TypeVar("T")


def from_node(cls: type[T], node: Any, where: str, ignore: tuple[str, ...] = ()) -> T:
    """`cls(**node)` with every value converted to its field's type; unknown keys (except
    `ignore`) and bad values raise one `ConfigError` naming `where.key`."""
    data = dict(to_plain(node) or {})
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - names - set(ignore))
    if unknown:
        what = where if "." in where else f"{where} config"
        raise ConfigError(f"{what} has unknown key(s) {unknown}; known: {sorted(names)}")
    kwargs = {k: convert(v, hints[k], f"{where}.{k}") for k, v in data.items() if k in names}
    try:
        return cls(**kwargs)
    except TypeError as exc:  # a required field is missing
        raise ConfigError(f"{where}: {exc}") from exc


def convert(value: Any, hint: Any, where: str) -> Any:
    """`value` as type `hint` (int, float, bool, str, Optional, tuple, list, dict, dataclass)."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in (a for a in args if a is not type(None)):
            try:
                return convert(value, arg, where)
            except ConfigError as exc:
                errors.append(exc)
        raise errors[0]
    if dataclasses.is_dataclass(hint):
        return value if isinstance(value, hint) else from_node(hint, value, where)
    if hint is Any:
        return value
    if origin in (tuple, list):
        if not isinstance(value, list | tuple):
            raise ConfigError(f"{where} must be a list, got {value!r}")
        item = args[0] if args else Any
        return origin(convert(v, item, f"{where}[{i}]") for i, v in enumerate(value))
    if origin is dict or hint is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{where} must be a mapping, got {value!r}")
        return dict(value)
    return _scalar(value, hint, where)


def _scalar(value: Any, hint: Any, where: str) -> Any:
    if hint is bool:
        if isinstance(value, bool):
            return value
        raise ConfigError(f"{where} must be true or false, got {value!r}")
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int | float | str):
            raise ConfigError(f"{where} must be an integer, got {value!r}")
        try:
            number = float(value)
        except ValueError:
            number = math.nan
        if not math.isfinite(number) or number != int(number):
            raise ConfigError(f"{where} must be an integer, got {value!r}")
        return int(number)
    if hint is float:
        try:
            number = float(value) if not isinstance(value, bool) else math.nan
        except (TypeError, ValueError):
            number = math.nan
        if not math.isfinite(number):
            raise ConfigError(f"{where} must be a finite number, got {value!r}")
        return number
    if hint is str:
        if isinstance(value, str | int | float) and not isinstance(value, bool):
            return str(value)
        raise ConfigError(f"{where} must be a string, got {value!r}")
    return value


def check(where: str, ok: bool, rule: str, value: Any) -> None:
    """One range rule: `ConfigError("{where} must be {rule}, got {value!r}")` unless `ok`."""
    if not ok:
        raise ConfigError(f"{where} must be {rule}, got {value!r}")
