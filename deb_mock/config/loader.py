"""Load the layered configuration of one root into a frozen :class:`Config`.

Order, later wins: built-in defaults, site-defaults, the templates the chroot
config includes, the chroot config, the user's config, then command-line
overrides (``--config-opts``, plugin options, flags).
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from deb_mock.build_sources import BuildSources
from deb_mock.config import locate
from deb_mock.config.schema import Config
from deb_mock.config.typed import build_dataclass, where
from deb_mock.config.yamlsource import KeyPath, Layer, load_yaml_layer, merge_layers, set_dotted
from deb_mock.digests import sha256
from deb_mock.errors import ConfigError, DebMockError
from deb_mock.names import is_safe_name
from deb_mock.resources import user_config_file
from deb_mock.stage_commands import STAGE_NAMES, check_command

BUILTIN = "built-in default"


@dataclasses.dataclass(frozen=True)
class Override:
    """One value set on the command line: ``dotted`` key, value, and the flag that set it."""

    dotted: str
    value: Any
    source: str


@dataclasses.dataclass(frozen=True)
class LoadedConfig:
    """The frozen config plus what --debug-config shows and what result.json records."""

    config: Config
    merged: Layer
    config_file: Path
    digest: str


def load_config(
    root: str | None,
    overrides: list[Override],
    plugin_sections: Mapping[str, type],
) -> LoadedConfig:
    """Read every layer for ``-r root`` and check it against the schema."""
    config_file = locate.resolve_root_config(root)
    layers = [_defaults_layer()]
    site = locate.site_defaults_file()
    if site.is_file():
        layers.append(_without_templates(load_yaml_layer(site)))
    layers.extend(_with_templates(config_file, seen=()))
    user = user_config_file()
    if user.is_file():
        layers.append(_without_templates(load_yaml_layer(user)))
    layers.append(_overrides_layer(overrides))
    merged = merge_layers(layers)
    merged.data.pop("templates", None)
    config = _build(merged, plugin_sections)
    if not config.name:
        config = dataclasses.replace(config, name=config_file.stem)
        merged.origins[("name",)] = f"{config_file} (file name)"
    if not is_safe_name(config.name):
        raise ConfigError(f"{where(merged.origins, ('name',))}: '{config.name}' is not a valid root name")
    digest = sha256(
        json.dumps(merged.data, sort_keys=True, default=str).encode()
    ).hexdigest()
    return LoadedConfig(config, merged, config_file, digest)


def with_rootless_paths(loaded: LoadedConfig, data_home: Path, cache_home: Path) -> LoadedConfig:
    """Roots and caches under the caller's XDG directories, unless a config file or option placed them."""
    config = loaded.config
    changes: dict[str, str] = {}
    for key, path in (("basedir", data_home), ("cache_topdir", cache_home)):
        if loaded.merged.origins.get((key,), BUILTIN) == BUILTIN:
            changes[key] = str(path)
            loaded.merged.origins[(key,)] = "rootless mode (XDG directory)"
    if not changes:
        return loaded
    return dataclasses.replace(loaded, config=dataclasses.replace(config, **changes))  # type: ignore[arg-type]


def _defaults_layer() -> Layer:
    defaults = dataclasses.asdict(Config())
    defaults = {k: v for k, v in defaults.items() if k not in ("templates",)}
    return Layer.from_mapping(_plain(defaults), BUILTIN)


def _plain(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return to_plain(value)
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, tuple | list):
        return [_plain(v) for v in value]
    return value


def _without_templates(layer: Layer) -> Layer:
    """site-defaults and the user config are merged around every root: they include nothing."""
    if "templates" in layer.data:
        raise ConfigError(f"{where(layer.origins, ('templates',))}: only chroot configs may name templates")
    return layer


def _with_templates(path: Path, seen: tuple[Path, ...]) -> list[Layer]:
    path = path.resolve()
    if path in seen:
        chain = " -> ".join(str(p) for p in (*seen, path))
        raise ConfigError(f"{path}: templates include each other in a loop: {chain}")
    layer = load_yaml_layer(path)
    names = layer.data.get("templates", [])
    if isinstance(names, str):
        names = [names]
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise ConfigError(f"{where(layer.origins, ('templates',))}: expected a list of names")
    result: list[Layer] = []
    for name in names:
        result.extend(_with_templates(locate.resolve_template(name, path), (*seen, path)))
    layer.data.pop("templates", None)
    result.append(layer)
    return result


def _overrides_layer(overrides: list[Override]) -> Layer:
    data: dict[str, Any] = {}
    origins: dict[KeyPath, str] = {}
    for override in overrides:
        parts = set_dotted(data, override.dotted, override.value)
        for i in range(1, len(parts) + 1):
            origins.setdefault(parts[:i], override.source)
        origins[parts] = override.source
    return Layer(data, origins, "command line")


def _build(merged: Layer, plugin_sections: Mapping[str, type]) -> Config:
    def plugins(value: Any, path: KeyPath) -> Mapping[str, Any]:
        if value is None:
            value = {}
        if not isinstance(value, Mapping):
            raise ConfigError(f"{where(merged.origins, path)}: expected a mapping of plugin names")
        result: dict[str, Any] = {}
        for name, section in plugin_sections.items():
            if getattr(section, "UNCHECKED", False):
                result[name] = section()
                continue
            result[name] = build_dataclass(section, value.get(name) or {}, merged.origins, (*path, name))
        for name in value:
            if name not in plugin_sections:
                known = ", ".join(sorted(plugin_sections)) or "none"
                raise ConfigError(
                    f"{where(merged.origins, (*path, name))}: unknown plugin (known: {known})"
                )
        return result

    extra: dict[str, Callable[[Any, KeyPath], Any]] = {"plugins": plugins}
    config = build_dataclass(Config, merged.data, merged.origins, (), extra)
    _check_stage_commands(config, merged)
    _check_build_sources(config, merged)
    _check_remote_cache(config, merged)
    return config


def _check_remote_cache(config: Config, merged: Layer) -> None:
    """A malformed registry URL is a config error (exit 3) in every run, not only in those that reach it."""
    if config.remote_cache.url:
        from deb_mock.remote_cache import Location  # only runs with a remote cache pay for its import

        try:
            Location.parse(config.remote_cache.url)
        except DebMockError as exc:
            raise ConfigError(f"{where(merged.origins, ('remote_cache', 'url'))}: {exc.message}") from None


def _check_build_sources(config: Config, merged: Layer) -> None:
    """build_sources must be apt sources and build_source_keys files: a config error naming the key."""
    for index, entry in enumerate(config.build_sources):
        try:
            BuildSources.parse([entry], [], "build_sources")
        except DebMockError as exc:
            raise ConfigError(f"{where(merged.origins, (f'build_sources[{index}]',))}: {exc.message}") from None
    for index, key in enumerate(config.build_source_keys):
        if not Path(key).is_file():
            raise ConfigError(f"{where(merged.origins, (f'build_source_keys[{index}]',))}: {key}: not a file")


def _check_stage_commands(config: Config, merged: Layer) -> None:
    """An escape sbuild does not know, in a hooks.* command, is a config error naming the key."""
    for stage in STAGE_NAMES:
        key = stage.replace("-", "_")
        for index, command in enumerate(config.hooks.commands(stage)):
            try:
                check_command(command)
            except DebMockError as exc:
                raise ConfigError(f"{where(merged.origins, ('hooks', f'{key}[{index}]'))}: {exc.message}") from None


def describe(loaded: LoadedConfig) -> str:
    """The merged config as YAML-ish lines, each with the file:line it came from."""
    lines = [f"# config file: {loaded.config_file}", f"# digest: {loaded.digest}"]
    plain = to_plain(loaded.config)
    plain.pop("templates", None)
    _describe(plain, (), loaded.merged.origins, lines)
    return "\n".join(lines)


def to_plain(value: Any) -> Any:
    """A config object as plain dicts, lists and scalars (for JSON and --debug-config)."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: to_plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    return _plain(value)


def _describe(data: Mapping[str, Any], prefix: KeyPath, origins: Any, out: list[str]) -> None:
    indent = "  " * len(prefix)
    for key in sorted(data):
        value = data[key]
        path = (*prefix, key)
        if isinstance(value, Mapping) and value:
            out.append(f"{indent}{key}:")
            _describe(value, path, origins, out)
        else:
            rendered = json.dumps(value, default=str)
            out.append(f"{indent}{key}: {rendered}    # {origins.get(path, BUILTIN)}")
