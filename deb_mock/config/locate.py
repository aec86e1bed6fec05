"""Find chroot configs by name, list them, and suggest a close name on a typo."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from deb_mock.errors import ConfigError
from deb_mock.resources import bundled_chroot_configs_dir, bundled_etc_dir, system_config_dir

#: files in a config directory that are not chroot configs
NOT_ROOTS = frozenset({"site-defaults", "default", "logging"})


@dataclasses.dataclass(frozen=True)
class ConfigEntry:
    """One chroot config found on disk."""

    name: str
    path: Path
    description: str


def search_dirs() -> list[Path]:
    """Directories searched for ``-r NAME``, first wins."""
    return [system_config_dir(), bundled_chroot_configs_dir()]


def list_configs() -> list[ConfigEntry]:
    """Every chroot config in /etc/deb-mock and the bundled set, sorted by name."""
    found: dict[str, ConfigEntry] = {}
    for directory in search_dirs():
        if not directory.is_dir():
            continue
        for path in sorted(directory.glob("*.yaml")):
            if path.stem in NOT_ROOTS or path.stem in found:
                continue
            found[path.stem] = ConfigEntry(path.stem, path, _description(path))
    return sorted(found.values(), key=lambda entry: entry.name)


def _description(path: Path) -> str:
    try:
        import yaml  # only --list-chroots reads descriptions

        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError):
        return "(unreadable)"
    if isinstance(data, dict) and isinstance(data.get("description"), str):
        return str(data["description"])
    return ""


def resolve_root_config(name_or_path: str | None) -> Path:
    """The file for ``-r``: a path, a known name, or the default config."""
    if name_or_path is None:
        return default_config_file()
    candidate = Path(name_or_path)
    if name_or_path.endswith((".yaml", ".yml")) or "/" in name_or_path:
        if not candidate.is_file():
            raise ConfigError(f"{candidate}: configuration file not found")
        return candidate.resolve()
    for directory in search_dirs():
        path = directory / f"{name_or_path}.yaml"
        if path.is_file():
            return path
    known = [entry.name for entry in list_configs()]
    import difflib  # only to suggest a name after a typo

    close = difflib.get_close_matches(name_or_path, known, n=1, cutoff=0.5)
    hint = f"did you mean '{close[0]}'? " if close else ""
    raise ConfigError(
        f"no chroot config named '{name_or_path}' in "
        + ", ".join(str(d) for d in search_dirs()),
        hint=f"{hint}known configs: {', '.join(known)}",
    )


def default_config_file() -> Path:
    """/etc/deb-mock/default.yaml if present, else the bundled one."""
    system = system_config_dir() / "default.yaml"
    return system if system.is_file() else bundled_etc_dir() / "default.yaml"


def site_defaults_file() -> Path:
    """/etc/deb-mock/site-defaults.yaml if present, else the bundled one."""
    system = system_config_dir() / "site-defaults.yaml"
    return system if system.is_file() else bundled_etc_dir() / "site-defaults.yaml"


def resolve_template(name: str, including_file: Path) -> Path:
    """A template named in ``templates:``, looked up next to the including file first."""
    file_name = name if name.endswith((".yaml", ".yml")) else f"{name}.yaml"
    candidates = [Path(file_name)] if Path(file_name).is_absolute() else [
        including_file.parent / file_name,
        including_file.parent / "templates" / file_name,
        *(d / "templates" / file_name for d in search_dirs()),
        *(d / file_name for d in search_dirs()),
    ]
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    raise ConfigError(f"{including_file}: template '{name}' not found")
