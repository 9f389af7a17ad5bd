"""What of an upstream packument may be stored: the hook the pull-through calls on every
upstream document before storing it, and again on each revalidation (time passes: a version
too young yesterday may be visible today).

This is the identity policy: it hides nothing. The supply-chain cooldown (``--uplink-min-age``,
per-pattern exceptions, per-version overrides, advisories blocking at pull time) replaces it
with the same signature.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class PullDecision:
    """The upstream document with hidden versions removed and dist-tags repointed, and
    ``{version: why}`` of what was hidden."""

    doc: dict[str, Any]
    hidden: dict[str, str] = field(default_factory=dict)


class PullPolicy:
    """Hides nothing."""

    def apply(self, name: str, doc: dict[str, Any], *, now: float, allowed: Collection[str],
              advisories: Sequence[Mapping[str, Any]]) -> PullDecision:
        """``doc`` as it may be stored at ``now``: ``allowed`` are versions an admin let through,
        ``advisories`` the known advisories of ``name`` (both ignored here)."""
        return PullDecision(doc)
