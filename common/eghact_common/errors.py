"""The one error tree of the project.

Every error that can reach a client is an :class:`EghactError`. Each class carries a
stable machine-readable ``code`` and the HTTP ``status`` it maps to; a single aiohttp
middleware per service turns them into the JSON body of DESIGN §3::

    {"error": "<code>", "message": "<for a person>", "detail": {...}}

Domain code raises these (never ``aiohttp.web`` exceptions, never ``assert``), and a
foreign exception is translated at one boundary with ``raise X(...) from exc``.

    EghactError                      500 internal_error
    ├── BadRequest                   400 bad_request
    │   ├── InvalidName              400 invalid_name
    │   ├── InvalidManifest          400 invalid_manifest   (detail.problems: every problem)
    │   ├── InvalidTarball           400 invalid_tarball    (code refined per check)
    │   ├── InvalidJson              400 invalid_json       (or json_too_deep)
    │   └── IntegrityMismatch        400 integrity_mismatch
    ├── AuthRequired                 401 auth_required
    ├── Forbidden                    403 forbidden
    ├── NotFound                     404 not_found
    │   ├── Unpublished              404 unpublished        (a tombstone: it existed)
    │   └── VersionsHeldBack         404 versions_held_back (uplinked: every version hidden by policy)
    ├── MethodNotAllowed             405 method_not_allowed
    │   └── ReadOnly                 405 read_only
    ├── Conflict                     409 conflict
    │   ├── VersionExists            409 version_exists
    │   └── UplinkedPackage          409 uplinked_package   (a copy pulled from an uplink: read-only here)
    ├── PayloadTooLarge              413 payload_too_large
    ├── Unresolvable                 422 unresolvable
    ├── RateLimited                  429 rate_limited       (retry_after seconds)
    ├── BadGateway                   502 bad_gateway
    │   └── UplinkUnavailable        502 uplink_unavailable (or uplink_integrity_mismatch, uplink_too_large)
    └── UpstreamUnavailable          503 upstream_unavailable

A subclass may refine ``code`` per instance (``InvalidTarball(..., code="tarball_link")``)
so that clients can tell apart every documented rejection while the status stays right.
"""

from __future__ import annotations

from typing import Any


class EghactError(Exception):
    """Base of every error a client may see."""

    code: str = "internal_error"
    status: int = 500

    def __init__(self, message: str, *, code: str | None = None, detail: dict[str, Any] | None = None):
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        self.detail: dict[str, Any] = detail or {}

    def to_body(self) -> dict[str, Any]:
        """The JSON error body of DESIGN §3."""
        body: dict[str, Any] = {"error": self.code, "message": self.message}
        if self.detail:
            body["detail"] = self.detail
        return body

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.code!r}, {self.message!r})"


class BadRequest(EghactError):
    code = "bad_request"
    status = 400


class InvalidName(BadRequest):
    code = "invalid_name"


class InvalidManifest(BadRequest):
    """A manifest with one or more problems; ``detail["problems"]`` lists all of them."""

    code = "invalid_manifest"

    def __init__(self, problems: list[str], *, message: str | None = None):
        self.problems = list(problems)
        super().__init__(
            message or "invalid manifest: " + "; ".join(self.problems),
            detail={"problems": self.problems},
        )


class InvalidTarball(BadRequest):
    code = "invalid_tarball"


class InvalidJson(BadRequest):
    """A client's JSON body that is not JSON, or nests too deep (``json_too_deep``)."""

    code = "invalid_json"


class IntegrityMismatch(BadRequest):
    code = "integrity_mismatch"


class AuthRequired(EghactError):
    code = "auth_required"
    status = 401


class Forbidden(EghactError):
    code = "forbidden"
    status = 403


class NotFound(EghactError):
    code = "not_found"
    status = 404


class Unpublished(NotFound):
    code = "unpublished"


class VersionsHeldBack(NotFound):
    """An uplinked package that exists upstream but whose every version the pull policy
    hides (too young for ``--uplink-min-age``, or blocked by an advisory): ``detail`` says
    why and, for a cooldown, when the first version becomes visible."""

    code = "versions_held_back"


class MethodNotAllowed(EghactError):
    code = "method_not_allowed"
    status = 405


class ReadOnly(MethodNotAllowed):
    code = "read_only"


class Conflict(EghactError):
    code = "conflict"
    status = 409


class VersionExists(Conflict):
    code = "version_exists"


class UplinkedPackage(Conflict):
    """A write to a package that is a copy pulled from an uplink (origin/eghact_origin/uplinks)."""

    code = "uplinked_package"

    @classmethod
    def of(cls, name: str, uplink: str | None = None) -> UplinkedPackage:
        return cls(f"{name} is a copy pulled from an uplink and is read-only here; an admin may take the name over "
                   f"(PUT /{name}?takeover=1 with an admin token), after which it is local for ever",
                   detail={"name": name, "uplink": uplink})


class PayloadTooLarge(EghactError):
    code = "payload_too_large"
    status = 413


class Unresolvable(EghactError):
    code = "unresolvable"
    status = 422


class RateLimited(EghactError):
    code = "rate_limited"
    status = 429

    def __init__(self, message: str, *, retry_after: float, detail: dict[str, Any] | None = None):
        super().__init__(message, detail=detail)
        self.retry_after = retry_after


class BadGateway(EghactError):
    code = "bad_gateway"
    status = 502


class UplinkUnavailable(BadGateway):
    """An uplink could not give what the store lacks (down, timing out, answering 5xx, or a
    tarball that does not match its packument's integrity); nothing was stored."""

    code = "uplink_unavailable"


class UpstreamUnavailable(EghactError):
    code = "upstream_unavailable"
    status = 503
