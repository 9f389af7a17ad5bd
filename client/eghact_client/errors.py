"""The client's errors: branches of the project's one tree (``eghact_common.errors``).

Each keeps the stable ``code`` and HTTP-like ``status`` of its base, so ``--json`` prints the
same ``{"error", "message", "detail"}`` body a server would; the CLI maps each to an exit code
(``eghact_client.cli``)::

    BadRequest
    ├── InvalidProject           400 invalid_project      (detail.problems: every problem)
    ├── InvalidLockfile          400 invalid_lockfile     (detail.problems: every problem)
    ├── IntegrityMismatch        400 integrity_mismatch   (a tarball is not what the lockfile says)
    └── InvalidTarball           400 tarball_*            (refused at extraction: traversal, link, ...)
    Conflict
    ├── LockfileOutOfDate        409 lockfile_out_of_date (frozen: the lockfile no longer matches)
    ├── InvalidTransition        409 invalid_transition   (activate an active plugin, deactivate one not active)
    ├── InstallNeeded            409 install_needed       (the lockfile changed since the last install)
    └── HookFailed               409 hook_failed          (a lifecycle hook failed, hung or ran out of memory)
    Forbidden
    └── CapabilityDenied         403 capability_denied    (a required capability denied: plugin, capability, chain)
    NotFound                     404 not_found            (a plugin the project does not have)
    Unresolvable                 422 unresolvable         (the registry's explanation in detail)
    UpstreamUnavailable
    └── NoSourceReachable        503 no_source_reachable  (every edge, the primary and the mirrors failed)
"""

from __future__ import annotations

import json
from typing import Any

from eghact_common.errors import (
    AuthRequired,
    BadRequest,
    Conflict,
    EghactError,
    Forbidden,
    IntegrityMismatch,
    InvalidTarball,
    NotFound,
    PayloadTooLarge,
    Unresolvable,
    UpstreamUnavailable,
)

__all__ = [
    "CapabilityDenied",
    "EghactError",
    "HookFailed",
    "InstallNeeded",
    "IntegrityMismatch",
    "InvalidLockfile",
    "InvalidProject",
    "InvalidTarball",
    "InvalidTransition",
    "LockfileOutOfDate",
    "NoFixAvailable",
    "NoSourceReachable",
    "NotFound",
    "Unresolvable",
    "from_answer",
]


class _Problems(BadRequest):
    """A document with problems; every one is listed, not only the first (``detail.problems``)."""

    what = "document"

    def __init__(self, problems: list[str], *, where: str | None = None):
        self.problems = list(problems)
        prefix = f"{where}: " if where else ""
        detail: dict[str, Any] = {"problems": self.problems}
        if where:
            detail["file"] = where
        super().__init__(f"{prefix}invalid {self.what}: " + "; ".join(self.problems), detail=detail)


class InvalidProject(_Problems):
    """``eghact.json`` (or ``package.json``'s ``eghact`` section) that cannot be used."""

    code = "invalid_project"
    what = "project"


class InvalidLockfile(_Problems):
    code = "invalid_lockfile"
    what = "lockfile"


class LockfileOutOfDate(Conflict):
    """A frozen install whose lockfile no longer matches the project's requirements."""

    code = "lockfile_out_of_date"


class InvalidTransition(Conflict):
    """A plugin state change that makes no sense from the plugin's state; ``detail`` names the
    plugin, its state, the operation and the states it is allowed from."""

    code = "invalid_transition"


class InstallNeeded(Conflict):
    """``activate``/``deactivate`` of a project whose lockfile is not the one installed."""

    code = "install_needed"


class HookFailed(Conflict):
    """A lifecycle hook failed, hung past its timeout or ran out of memory; the operation was
    rolled back. ``detail``: hook, plugin (``manager`` for a registered callable), reason."""

    code = "hook_failed"


class CapabilityDenied(Forbidden):
    """A plugin requires a capability the caller or the project's policy denies; ``detail``:
    plugin, version, capability, denied_by, chain (root first)."""

    code = "capability_denied"


class NoSourceReachable(UpstreamUnavailable):
    """Every source was tried (with retries) and none answered; ``detail.tried`` says how each failed."""

    code = "no_source_reachable"


_BY_STATUS: dict[int, type[EghactError]] = {400: BadRequest, 401: AuthRequired, 403: Forbidden, 404: NotFound,
                                            409: Conflict, 413: PayloadTooLarge, 422: Unresolvable}


def from_answer(status: int, body: bytes, *, what: str) -> EghactError:
    """A registry's error answer as the error it names: its own code, message and detail when
    the body is the JSON error of DESIGN §3, else the status's class with ``what`` said."""
    try:
        parsed = json.loads(body)
    except ValueError:
        parsed = None
    cls = _BY_STATUS.get(status, UpstreamUnavailable if status >= 500 else BadRequest)
    if isinstance(parsed, dict) and isinstance(parsed.get("message"), str):
        code = parsed.get("error") if isinstance(parsed.get("error"), str) else None
        detail = parsed.get("detail")
        return cls(parsed["message"], code=code, detail={**(detail if isinstance(detail, dict) else {}),
                                                        "status": status})
    return cls(f"{what}: the registry answered {status}", detail={"status": status})


class NoFixAvailable(Unresolvable):
    """A security update for which no version inside the requirements fixes an advisory;
    ``detail``: package, advisories (id, severity, vulnerable range), the required ranges and
    the resolver's explanation."""

    code = "no_fix_available"
