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
    └── LockfileOutOfDate        409 lockfile_out_of_date (frozen: the lockfile no longer matches)
    NotFound                     404 not_found            (a plugin the project does not have)
    Unresolvable                 422 unresolvable         (the registry's explanation in detail)
    UpstreamUnavailable
    └── NoSourceReachable        503 no_source_reachable  (every edge, the primary and the mirrors failed)
"""

from __future__ import annotations

from typing import Any

from eghact_common.errors import (
    BadRequest,
    Conflict,
    EghactError,
    IntegrityMismatch,
    InvalidTarball,
    NotFound,
    Unresolvable,
    UpstreamUnavailable,
)

__all__ = [
    "EghactError",
    "IntegrityMismatch",
    "InvalidLockfile",
    "InvalidProject",
    "InvalidTarball",
    "LockfileOutOfDate",
    "NoSourceReachable",
    "NotFound",
    "Unresolvable",
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


class NoSourceReachable(UpstreamUnavailable):
    """Every source was tried (with retries) and none answered; ``detail.tried`` says how each failed."""

    code = "no_source_reachable"
