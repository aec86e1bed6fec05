"""Turn a merged mapping into frozen dataclasses, checking every key and type.

A small, strict converter instead of a schema library: the config dataclasses
are the schema, and an error names the key, the expected type and the
``file:line`` the value came from.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from deb_mock.config.yamlsource import KeyPath, Origins
from deb_mock.errors import ConfigError

T = TypeVar("T")


def where(origins: Origins, path: KeyPath) -> str:
    """``file:line: key 'a.b'`` for messages (a list item is placed by its list's key)."""
    origin = None
    probe = path
    while probe and origin is None:
        origin = origins.get(probe)
        if origin is None and probe[-1].endswith("]"):
            probe = (*probe[:-1], probe[-1].split("[", 1)[0])
            origin = origins.get(probe)
        probe = probe[:-1]
    prefix = f"{origin}: " if origin else ""
    return f"{prefix}key '{'.'.join(path)}'"


def build_dataclass(
    cls: type[T],
    data: Mapping[str, Any],
    origins: Origins,
    prefix: KeyPath = (),
    extra: Mapping[str, Callable[[Any, KeyPath], Any]] | None = None,
) -> T:
    """Build ``cls`` from ``data``: unknown keys and wrong types are ConfigErrors.

    ``extra`` maps field names to custom converters (used for plugin sections,
    whose types are only known once the plugins are loaded).
    """
    if not isinstance(data, Mapping):
        raise ConfigError(f"{where(origins, prefix)}: expected a mapping, got {_kind(data)}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    for key in data:
        if key not in fields:
            import difflib  # only to suggest a key after a typo

            close = difflib.get_close_matches(key, list(fields), n=1)
            hint = f" (did you mean '{close[0]}'?)" if close else ""
            raise ConfigError(f"{where(origins, (*prefix, key))}: unknown key{hint}")
    kwargs: dict[str, Any] = {}
    for name, field in fields.items():
        if name not in data:
            if (
                field.default is dataclasses.MISSING
                and field.default_factory is dataclasses.MISSING
            ):
                raise ConfigError(f"{where(origins, (*prefix, name))}: required key is missing")
            continue
        path = (*prefix, name)
        if extra and name in extra:
            kwargs[name] = extra[name](data[name], path)
        else:
            kwargs[name] = coerce(data[name], hints[name], origins, path)
    return cls(**kwargs)


def coerce(value: Any, hint: Any, origins: Origins, path: KeyPath) -> Any:
    """Check ``value`` against the type ``hint`` and convert lists to tuples."""
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if hint is Any:
        return value
    if origin in (types.UnionType, typing.Union):
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in (a for a in args if a is not type(None)):
            try:
                return coerce(value, arg, origins, path)
            except ConfigError as exc:
                errors.append(exc)
        raise errors[0]
    if origin is typing.Literal:
        if value not in args:
            allowed = ", ".join(repr(a) for a in args)
            raise ConfigError(f"{where(origins, path)}: {value!r} is not one of {allowed}")
        return value
    if origin is tuple:
        if not isinstance(value, list | tuple):
            raise _type_error(value, "a list", origins, path)
        item_type = args[0]
        return tuple(
            coerce(item, item_type, origins, (*path[:-1], f"{path[-1]}[{i}]"))
            for i, item in enumerate(value)
        )
    if origin in (dict, Mapping, typing.Mapping) or hint is dict:
        if not isinstance(value, Mapping):
            raise _type_error(value, "a mapping", origins, path)
        key_type, value_type = args or (str, Any)
        return types.MappingProxyType(
            {
                coerce(k, key_type, origins, path): coerce(v, value_type, origins, (*path, str(k)))
                for k, v in value.items()
            }
        )
    if dataclasses.is_dataclass(hint) and isinstance(hint, type):
        return build_dataclass(hint, value, origins, path)
    return _scalar(value, hint, origins, path)


def _scalar(value: Any, hint: Any, origins: Origins, path: KeyPath) -> Any:
    if hint is bool:
        if isinstance(value, bool):
            return value
        raise _type_error(value, "true or false", origins, path)
    if hint is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise _type_error(value, "an integer", origins, path)
    if hint is float:
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
        raise _type_error(value, "a number", origins, path)
    if hint is str:
        if isinstance(value, str):
            return value
        raise _type_error(value, "a string", origins, path)
    raise ConfigError(f"{where(origins, path)}: unsupported type {hint!r} in the schema")


def _type_error(value: Any, expected: str, origins: Origins, path: KeyPath) -> ConfigError:
    return ConfigError(f"{where(origins, path)}: expected {expected}, got {_kind(value)}")


def _kind(value: Any) -> str:
    if value is None:
        return "nothing (null)"
    if isinstance(value, bool):
        return f"a boolean ({value})"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, Mapping):
        return "a mapping"
    return f"{type(value).__name__} {value!r}"
