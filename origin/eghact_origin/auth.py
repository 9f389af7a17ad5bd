"""Tokens, scopes and who may read or write what.

Tokens are 256 random bits, shown once and stored only as their SHA-256. A slow password
hash buys nothing for secrets with that much entropy and would cost a KDF per request.

Scopes (a token has one or more):
    read                 read every package, private scopes included
    read:PATTERN         read packages matching PATTERN (``@acme/*``, ``*``, an exact name)
    publish:PATTERN      publish, deprecate and tag matching packages (implies read of them)
    admin                everything, including unpublish
    edge                 an edge node: report hit counts and register (/-/v1/stats, /-/v1/edges);
                         reads nothing private
Patterns are shell-style (``fnmatchcase``), matched against the full package name.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from fnmatch import fnmatchcase

from eghact_common.errors import AuthRequired, BadRequest, Forbidden

from .storage.visibility import NameFilter

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
    token_id: int | None = None  # what edge registrations are bound to

    @property
    def is_edge(self) -> bool:
        return "edge" in self.scopes

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

    def reach(self, principal: Principal | None, scope: str) -> str:
        """How much of a private scope ``principal`` may read: ``all``, ``some`` (a pattern that
        may match some of its names; ask :meth:`Principal.can_read` name by name) or ``none``.
        Conservative: a pattern is only ``all`` when it plainly covers the whole scope."""
        if principal is None:
            return "none"
        prefix = scope.rstrip("/") + "/"
        reach = "none"
        for granted in principal.scopes:
            if granted in ("admin", "read"):
                return "all"
            kind, _, pattern = granted.partition(":")
            if kind not in _SCOPE_KINDS or not pattern:
                continue
            literal = pattern[:min((i for i, c in enumerate(pattern) if c in "*?["), default=len(pattern))]
            if pattern == literal + "*" and prefix.startswith(literal):
                return "all"
            if prefix.startswith(literal) or literal.startswith(prefix):
                reach = "some"
        return reach

    def public_view(self, principal: Principal | None) -> bool:
        """Whether ``principal`` sees the registry as a caller who may read no private package
        (anonymous, an edge, a token for public names only): the public numbering of the
        feed and counts without any private package. False when no scope is private."""
        return bool(self.private_scopes) and all(self.reach(principal, s) == "none" for s in self.private_scopes)

    def name_filter(self, principal: Principal | None) -> NameFilter:
        """What a listing or a count may include for ``principal`` (storage turns it into SQL)."""
        hidden: list[str] = []
        partial: list[str] = []
        for scope in self.private_scopes:
            reach = self.reach(principal, scope)
            if reach != "all":
                (hidden if reach == "none" else partial).append(scope.rstrip("/") + "/")
        readable = principal.can_read if principal is not None and partial else None
        return NameFilter(tuple(hidden), tuple(partial), readable)

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
