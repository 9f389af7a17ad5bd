"""The admin's per-version overrides of the pull policy (:mod:`.policy`'s ``allowed``): what
one names, checked the same way for the HTTP endpoints and the CLI, and the hook by which
the uplink service recomputes a package's view once its overrides change."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from eghact_common import names, semver
from eghact_common.errors import BadRequest

__all__ = ["OnAllowed", "parse_spec", "validate"]

# Called with a package name after its overrides changed (the uplink service's ``reapply``):
# the view it stores, and the feed event for it, follow before the admin's request returns.
OnAllowed = Callable[[str], Awaitable[object]]


def validate(name: str, version: str) -> tuple[str, str]:
    """``(name, version)`` when both can name an upstream version; else InvalidName (npm's
    rules for names that already exist: ``legacy``) or InvalidVersion (400 ``invalid_version``).
    The version is kept as written: it must match the key of the upstream's ``versions``."""
    names.validate_name(name, legacy=True)
    if not version[:1].isdigit() or semver.parse(version, loose=True) is None:
        raise semver.InvalidVersion(f"{version[:80]!r} is not a version (like 1.2.3 or 2.0.0-rc.1)",
                                    detail={"version": version[:256]})
    return name, version


def parse_spec(spec: str) -> tuple[str, str]:
    """``NAME@VERSION`` (``@scope/name@1.2.3`` too) as :func:`validate` checks it."""
    name, at, version = spec.rpartition("@")
    if not at or not name or name == "@":
        raise BadRequest(f"{spec!r} is not NAME@VERSION", code="invalid_spec")
    return validate(name, version)
