"""The closed vocabulary of plugin capabilities, and how policy patterns cover them.

A capability is a *kind* and, for two kinds, an *argument*::

    filesystem:read  filesystem:write  process:spawn  dom:read  dom:write  gpu:compute
    network:fetch                      every host
    network:fetch:api.example.com      one host
    network:fetch:*.api.com            every host under api.com (any depth, not api.com itself)
    api:NAME                           a framework API; NAME is [a-z][a-z0-9-]* with dots allowed

Policy patterns (:func:`capability_matches` for allow-lists, :func:`capability_overlaps`
for deny-lists) are capabilities, or a family with ``*``:
``*`` (everything), ``filesystem:*``, ``network:*``, ``network:fetch:*``, ``api:*``,
``api:editor.*``, ...
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = [
    "KINDS",
    "Capability",
    "InvalidCapability",
    "capability_matches",
    "capability_overlaps",
    "parse_capability",
]


class InvalidCapability(ValueError):
    """A string outside the capability vocabulary."""


# Policy as data: each kind and what its argument is. "none": no argument; "host?": an
# optional host pattern; "name": a required API name.
KINDS: dict[str, str] = {
    "filesystem:read": "none",
    "filesystem:write": "none",
    "network:fetch": "host?",
    "process:spawn": "none",
    "dom:read": "none",
    "dom:write": "none",
    "gpu:compute": "none",
    "api": "name",
}

_API_NAME = re.compile(r"[a-z][a-z0-9-]*(?:\.[a-z][a-z0-9-]*)*")
_LABEL = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?")
_MAX_HOST = 253


def _host_problem(host: str) -> str | None:
    """Why ``host`` is not a host pattern (a hostname, maybe with one leading ``*.``), or None."""
    if host == "*":
        return "use network:fetch for every host"
    wildcard = host.startswith("*.")
    rest = host[2:] if wildcard else host
    if "*" in rest:
        return "only one leading '*.' wildcard is allowed"
    labels = rest.split(".")
    if len(host) > _MAX_HOST:
        return f"a host name has at most {_MAX_HOST} characters"
    if not labels or not all(_LABEL.fullmatch(label) for label in labels):
        return "not a host name (labels of a-z, 0-9 and inner '-', separated by dots)"
    # Like TLS certificates: `*.com` would mean half the internet; say `network:fetch` instead.
    if wildcard and len(labels) < 2:
        return "a wildcard needs at least two labels after '*.' (use network:fetch for every host)"
    return None


@dataclass(frozen=True, slots=True, order=True)
class Capability:
    """One capability, valid by construction. ``str()`` gives its canonical text."""

    kind: str
    argument: str | None = None

    def __post_init__(self) -> None:
        rule = KINDS.get(self.kind)
        if rule is None:
            raise InvalidCapability(f"unknown capability {self._text()!r}")
        if rule == "none" and self.argument is not None:
            raise InvalidCapability(f"unknown capability {self._text()!r}: {self.kind} takes no argument")
        if rule == "name" and (self.argument is None or not _API_NAME.fullmatch(self.argument)):
            raise InvalidCapability(
                f"invalid capability {self._text()!r}: an API name is [a-z][a-z0-9-]*, dots allowed"
            )
        if rule == "host?" and self.argument is not None:
            problem = _host_problem(self.argument)
            if problem:
                raise InvalidCapability(f"invalid capability {self._text()!r}: {problem}")

    def _text(self) -> str:
        return self.kind if self.argument is None else f"{self.kind}:{self.argument}"

    def __str__(self) -> str:
        return self._text()


def parse_capability(text: str) -> Capability:
    """Parse ``dom:read``, ``network:fetch:*.api.com``, ``api:editor.commands``, ...

    Host names are case-insensitive and come back lower-case; everything else must be
    written exactly. Raises :class:`InvalidCapability`.
    """
    if not isinstance(text, str):
        raise InvalidCapability(f"a capability must be a string, not {type(text).__name__}")
    if text in KINDS and KINDS[text] != "name":
        return Capability(text)
    if text.startswith("network:fetch:"):
        return Capability("network:fetch", text.removeprefix("network:fetch:").lower())
    if text.startswith("api:"):
        return Capability("api", text.removeprefix("api:"))
    raise InvalidCapability(f"unknown capability {text!r}")


def _host_covers(pattern: str, host: str) -> bool:
    if pattern.startswith("*."):
        return host == pattern or host.endswith(pattern[1:])
    return host == pattern


def _covers(pattern: Capability, capability: Capability) -> bool:
    if pattern.kind != capability.kind:
        return False
    if pattern.argument is None:
        return True  # network:fetch covers every host
    if capability.argument is None:
        return False  # an unrestricted fetch is not inside one host pattern
    if pattern.kind == "network:fetch":
        return _host_covers(pattern.argument, capability.argument)
    return pattern.argument == capability.argument


# What may stand before `:*`: a namespace (`network`, `api`) or a kind with an argument.
_FAMILIES = frozenset(kind.split(":")[0] for kind in KINDS) | {kind for kind, rule in KINDS.items() if rule != "none"}


def _family_covers(prefix: str, capability: Capability) -> bool:
    """``prefix`` is a pattern without its final ``*``: ``api:``, ``network:fetch:``, ``api:ui.``."""
    if prefix == "":
        return True
    head = prefix.rstrip(":.")
    if prefix.endswith(":") and head in _FAMILIES:
        text = str(capability)
        return text.startswith(prefix) or capability.kind == head
    if prefix.startswith("api:") and prefix.endswith(".") and _API_NAME.fullmatch(prefix[4:-1]):
        return capability.kind == "api" and str(capability).startswith(prefix)
    raise InvalidCapability(f"invalid capability pattern {prefix + '*'!r}")


def _is_family_pattern(pattern: Capability | str) -> bool:
    return isinstance(pattern, str) and (pattern == "*" or pattern.endswith((":*", ".*")))


def capability_matches(capability: Capability | str, pattern: Capability | str) -> bool:
    """Whether ``pattern`` covers everything ``capability`` grants (use it for allow-lists).

    ``network:fetch`` covers every fetch capability, ``network:fetch:*.evil.com`` covers
    ``network:fetch:cdn.evil.com`` and ``network:fetch:*.x.evil.com`` but not the
    unrestricted ``network:fetch`` (which reaches more than that pattern); ``api:*`` covers
    every API. A malformed pattern raises :class:`InvalidCapability`, so that a typo in a
    policy is never silently a no-op.
    """
    cap = capability if isinstance(capability, Capability) else parse_capability(capability)
    if _is_family_pattern(pattern):
        return _family_covers(str(pattern)[:-1], cap)
    parsed = pattern if isinstance(pattern, Capability) else parse_capability(pattern)
    return _covers(parsed, cap)


def capability_overlaps(capability: Capability | str, pattern: Capability | str) -> bool:
    """Whether ``capability`` grants anything ``pattern`` covers (use it for deny-lists).

    Unlike :func:`capability_matches`, the unrestricted ``network:fetch`` overlaps
    ``network:fetch:*.evil.com``: it can reach those hosts too.
    """
    cap = capability if isinstance(capability, Capability) else parse_capability(capability)
    if _is_family_pattern(pattern):
        return _family_covers(str(pattern)[:-1], cap)
    parsed = pattern if isinstance(pattern, Capability) else parse_capability(pattern)
    # Host sets are subtrees of the DNS tree (or single hosts), so two of them meet
    # exactly when one contains the other.
    return _covers(parsed, cap) or _covers(cap, parsed)
