"""deb-mock: clean, isolated, cached Debian build roots.

The public Python API is :class:`deb_mock.root.Root`; plugins implement the
hooks in :mod:`deb_mock.hookspecs` with :data:`hookimpl`.
"""

from __future__ import annotations

import pluggy

__version__ = "0.1.0"

hookimpl = pluggy.HookimplMarker("deb_mock")

__all__ = ["__version__", "hookimpl"]
