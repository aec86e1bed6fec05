"""Layered YAML configuration, read once into frozen typed objects."""

from deb_mock.config.loader import LoadedConfig, Override, describe, load_config
from deb_mock.config.schema import Config, SandboxConfig

__all__ = ["Config", "LoadedConfig", "Override", "SandboxConfig", "describe", "load_config"]
