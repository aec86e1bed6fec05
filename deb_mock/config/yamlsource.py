"""Read YAML files while remembering the file and line of every value.

Users must be told *where* a wrong value stands, so configuration is never
loaded with a plain ``yaml.safe_load``: each leaf keeps its origin
(``file:line``) alongside it, and merging layers keeps the origin of the layer
that won.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from deb_mock.config import parsed_cache
from deb_mock.errors import ConfigError

if TYPE_CHECKING:  # PyYAML is imported only when a file is parsed (see parsed_cache)
    from yaml.nodes import MappingNode, Node

KeyPath = tuple[str, ...]
Origins = dict[KeyPath, str]


class Layer:
    """One source of configuration: a nested mapping plus where each key came from."""

    def __init__(self, data: dict[str, Any], origins: Origins, label: str) -> None:
        self.data = data
        self.origins = origins
        self.label = label

    @classmethod
    def from_mapping(cls, data: dict[str, Any], label: str) -> Layer:
        """Wrap an in-memory mapping (defaults, command line); every key gets ``label``."""
        origins: Origins = {}
        _record_origins(data, (), label, origins)
        return cls(data, origins, label)


def _record_origins(data: dict[str, Any], prefix: KeyPath, label: str, out: Origins) -> None:
    for key, value in data.items():
        out[(*prefix, key)] = label
        if isinstance(value, dict):
            _record_origins(value, (*prefix, key), label, out)


def load_yaml_layer(path: Path) -> Layer:
    """Parse ``path`` into a :class:`Layer` (or take the cached parse); syntax errors name file and line."""
    try:
        with open(path, "rb") as handle:
            info = os.fstat(handle.fileno())
            cached = parsed_cache.load(str(path), info)
            if cached is not None:
                return Layer(cached[0], cached[1], str(path))
            text = handle.read().decode("utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{path}: configuration file not found") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read configuration file: {exc.strerror}") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    layer = _parse(path, text)
    parsed_cache.store(str(path), info, layer.data, layer.origins)
    return layer


def _parse(path: Path, text: str) -> Layer:
    import yaml
    from yaml.nodes import MappingNode

    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = f":{mark.line + 1}" if mark is not None else ""
        raise ConfigError(f"{path}{line}: invalid YAML: {exc.problem or exc}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: invalid YAML: {exc}") from None
    if node is None:
        return Layer({}, {}, str(path))
    if not isinstance(node, MappingNode):
        raise ConfigError(
            f"{path}:{node.start_mark.line + 1}: the top level must be a mapping of keys"
        )
    origins: Origins = {}
    data = _mapping(node, (), path, origins)
    return Layer(data, origins, str(path))


def _mapping(node: MappingNode, prefix: KeyPath, path: Path, origins: Origins) -> dict[str, Any]:
    from yaml.nodes import MappingNode, ScalarNode

    result: dict[str, Any] = {}
    for key_node, value_node in node.value:
        line = key_node.start_mark.line + 1
        if not isinstance(key_node, ScalarNode) or key_node.tag != "tag:yaml.org,2002:str":
            raise ConfigError(f"{path}:{line}: keys must be plain strings")
        key = str(key_node.value)
        dotted = ".".join((*prefix, key))
        if key in result:
            raise ConfigError(f"{path}:{line}: key '{dotted}' is given twice")
        origins[(*prefix, key)] = f"{path}:{line}"
        if isinstance(value_node, MappingNode):
            result[key] = _mapping(value_node, (*prefix, key), path, origins)
        else:
            result[key] = _construct(value_node, path, dotted)
    return result


def _construct(node: Node, path: Path, dotted: str) -> Any:
    from yaml.constructor import ConstructorError, SafeConstructor

    try:
        return SafeConstructor().construct_object(node, deep=True)
    except ConstructorError as exc:
        line = node.start_mark.line + 1
        raise ConfigError(f"{path}:{line}: key '{dotted}': {exc.problem}") from None


def merge_layers(layers: list[Layer]) -> Layer:
    """Deep-merge ``layers`` in order, later wins; lists and scalars are replaced whole."""
    data: dict[str, Any] = {}
    origins: Origins = {}
    for layer in layers:
        _merge_into(data, layer.data, (), layer.origins, origins)
    return Layer(data, origins, "merged")


def _merge_into(
    dest: dict[str, Any],
    src: dict[str, Any],
    prefix: KeyPath,
    src_origins: Origins,
    origins: Origins,
) -> None:
    for key, value in src.items():
        path = (*prefix, key)
        if isinstance(value, dict) and isinstance(dest.get(key), dict):
            origins.setdefault(path, src_origins.get(path, "?"))
            _merge_into(dest[key], value, path, src_origins, origins)
            continue
        dest[key] = _deep_copy(value)
        for stale in [p for p in origins if p[: len(path)] == path]:
            del origins[stale]
        origins[path] = src_origins.get(path, "?")
        if isinstance(value, dict):
            _copy_origins(path, src_origins, origins)


def _copy_origins(path: KeyPath, src_origins: Origins, origins: Origins) -> None:
    for key_path, origin in src_origins.items():
        if key_path[: len(path)] == path:
            origins[key_path] = origin


def _deep_copy(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _deep_copy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_deep_copy(v) for v in value]
    return value


def set_dotted(layer_data: dict[str, Any], dotted: str, value: Any) -> KeyPath:
    """Set ``a.b.c = value`` in a nested mapping, creating the mappings on the way."""
    parts = tuple(dotted.split("."))
    if not all(parts):
        raise ConfigError(f"'{dotted}': empty component in the key")
    node = layer_data
    for part in parts[:-1]:
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            raise ConfigError(f"'{dotted}': '{part}' is not a section")
        node = child
    node[parts[-1]] = value
    return parts


def parse_option_value(text: str) -> Any:
    """Read a command-line value the way YAML would (``true``, ``3``, ``[a, b]``)."""
    import yaml

    try:
        return yaml.safe_load(text) if text != "" else ""
    except yaml.YAMLError:
        return text
