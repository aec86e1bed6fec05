"""The one rule for names that become directory names: config names, --uniqueext, snapshot names.

A letter or digit first, then letters, digits and ``. _ + -``: no slash, no
``..``, nothing overlayfs options would misread (``:`` ``,``).
"""

from __future__ import annotations

import re

_SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]*$")


def is_safe_name(value: str, max_length: int | None = None) -> bool:
    """Whether ``value`` may name a directory of deb-mock's (at most ``max_length`` characters)."""
    return bool(_SAFE_NAME.match(value)) and (max_length is None or len(value) <= max_length)
