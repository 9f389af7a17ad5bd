"""Tokens, scopes and who may read or write what.

Tokens are 256 random bits, shown once and stored only as their SHA-256. A slow password
hash buys nothing for secrets with that much entropy and would cost a KDF per request.

Scopes (a token has one or more):
    read                 read every package, private scopes included
    read:PATTERN         read packages matching PATTERN (``@acme/*``, ``*``, an exact name)
    publish:PATTERN      publish, deprecate and tag matching packages (implies read of them)
    admin                everything, including unpublish
    edge                 an edge node: report hit counts and register (/-/v1/stats, /-/v1/edges)
Patterns are shell-style (``fnmatchcase``), matched against the full package name.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from fnmatch import fnmatchcase

from eghact_common.errors import AuthRequired, BadRequest, Forbidden

TOKEN_PREFIX = "egh_"
_SCOPE_KINDS = ("read", "publish")


def new_token() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def validate_scope(scope: str) -> str:
    """A scope as typed by an operator; raises BadRequest with the accepted forms."""
    if scope in ("read", "admin", "edge"):  # edge: an edge node's reports (stats, registration)
        return scope
    kind, sep, pattern = scope.partition(":")
    if sep and kind in _SCOPE_KINDS and pattern and " " not in pattern:
        return scope
    raise BadRequest(
        f"invalid scope {scope!r}: use read, read:PATTERN, publish:PATTERN, edge or admin (PATTERN like @acme/* or *)",
        code="invalid_scope",
    )


@dataclass(frozen=True)
class Principal:
    """Who is asking: a token's name and scopes. ``None`` stands for anonymous."""

    name: str
    scopes: tuple[str, ...]

    @property
    def is_admin(self) -> bool:
        return "admin" in self.scopes

    def can_read(self, package: str) -> bool:
        for scope in self.scopes:
            if scope in ("admin", "read"):
                return True
            kind, _, pattern = scope.partition(":")
            if kind in ("read", "publish") and fnmatchcase(package, pattern):
                return True
        return False

    def can_publish(self, package: str) -> bool:
        if self.is_admin:
            return True
        return any(
            scope.startswith("publish:") and fnmatchcase(package, scope.partition(":")[2])
            for scope in self.scopes
        )


@dataclass(frozen=True)
class AccessPolicy:
    """Which names are private (read needs a token), as configured at start."""

    private_scopes: tuple[str, ...] = ()

    def is_private(self, package: str) -> bool:
        return any(package.startswith(scope.rstrip("/") + "/") for scope in self.private_scopes)

    def check_read(self, principal: Principal | None, package: str) -> None:
        # The same answer whether or not the package exists: no existence oracle.
        if not self.is_private(package):
            return
        if principal is None:
            raise AuthRequired(f"{package} is in a private scope; a token with read access is required")
        if not principal.can_read(package):
            raise Forbidden(f"token {principal.name!r} may not read {package}")

    def check_publish(self, principal: Principal | None, package: str) -> Principal:
        if principal is None:
            raise AuthRequired("publishing needs a token (Authorization: Bearer ...)")
        if not principal.can_publish(package):
            raise Forbidden(f"token {principal.name!r} may not publish {package}")
        return principal

    def check_admin(self, principal: Principal | None, action: str) -> Principal:
        if principal is None:
            raise AuthRequired(f"{action} needs an admin token")
        if not principal.is_admin:
            raise Forbidden(f"{action} needs an admin token; {principal.name!r} is not admin")
        return principal


def bearer_token(header: str | None) -> str | None:
    """The token of an ``Authorization: Bearer`` header (npm sends exactly this form)."""
    if not header:
        return None
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        raise AuthRequired("unsupported Authorization header: use 'Bearer <token>'")
    return value.strip()
