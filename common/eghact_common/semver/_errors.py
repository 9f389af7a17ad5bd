"""The two ways semver input can be wrong.

Both are :class:`ValueError` (what Python code expects from a parser) and
:class:`~eghact_common.errors.BadRequest` (so one that escapes to a client is a 400 with a
stable code, like every other error of the project)::

    BadRequest, ValueError
    ├── InvalidVersion   400 invalid_version
    └── InvalidRange     400 invalid_range
"""

from __future__ import annotations

from eghact_common.errors import BadRequest


class InvalidVersion(BadRequest, ValueError):
    """Not a version node-semver would parse (with the same ``loose`` option)."""

    code = "invalid_version"


class InvalidRange(BadRequest, ValueError):
    """Not a range node-semver would parse (with the same options)."""

    code = "invalid_range"
