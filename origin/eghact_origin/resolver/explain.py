"""Conflict explanations: why no installation satisfies a request, for a person and as JSON.

A conflict is told as the chains of requirements that meet on one package::

    app needs chart ^2, chart@2.1.0 needs core ^3, app needs core ^2
    — no version of core satisfies both ^3 and ^2

and raised as :class:`~eghact_common.errors.Unresolvable` (422) whose ``detail`` says the same::

    {"conflict": {"package": "core",
                  "requirements": [{"path": ["app", "chart@2.1.0"], "range": "^3", "kind": "prod"},
                                   {"path": ["app"], "range": "^2", "kind": "prod"}]},
     "because": ["app needs chart ^2", "chart@2.1.0 needs core ^3", "app needs core ^2"],
     "excluded": [{"package": "core", "version": "3.1.0", "reason": "..."}]}

The isolate solver and the prompt walk know their requirement chains directly and call
:func:`unresolvable`; the dedupe solver knows a set of :class:`Fact` (the external
incompatibilities its proof of failure rests on) and calls :func:`from_facts`, which finds
the package they meet on and the chains that lead there from the request.
"""

from __future__ import annotations

from collections import Counter, deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from eghact_common import semver
from eghact_common.errors import Unresolvable

from .policy import Exclusion

__all__ = ["ROOT", "Fact", "Requirement", "Step", "from_facts", "label", "unresolvable"]

#: how explanations name the request itself
ROOT = "app"
_MAX_CLAUSES = 12
_KIND_WORDS = {"prod": "", "optional": "optional ", "peer": "peer ", "peerOptional": "optional peer "}


def label(name: str, versions: Sequence[str]) -> str:
    """``chart@2.1.0``, ``chart@2.0.0 || 2.1.0``, or ``chart@1.0.0 - 1.9.0 (10 versions)``."""
    if not versions:
        return name
    if len(versions) <= 3:
        return f"{name}@{' || '.join(versions)}"
    return f"{name}@{versions[0]} - {versions[-1]} ({len(versions)} versions)"


@dataclass(frozen=True)
class Step:
    """``source`` (a label, or :data:`ROOT`) declares ``target`` at ``range``."""

    source: str
    target: str
    range: str
    kind: str = "prod"

    def clause(self) -> str:
        if self.kind == "peerOptional":
            return f"{self.source} accepts {self.target} only at {self.range} (optional peer)"
        verb = "need" if " || " in self.source or " - " in self.source else "needs"
        return f"{self.source} {verb} {_KIND_WORDS.get(self.kind, '')}{self.target} {self.range}"


@dataclass(frozen=True)
class Requirement:
    """A chain of steps from the request to one requirement on the conflict package."""

    steps: tuple[Step, ...]

    @property
    def last(self) -> Step:
        return self.steps[-1]

    def as_dict(self) -> dict[str, object]:
        return {"path": [s.source for s in self.steps], "range": self.last.range, "kind": self.last.kind}


def unresolvable(
    package: str,
    requirements: Sequence[Requirement],
    *,
    excluded: Iterable[Exclusion] = (),
    missing: bool = False,
    extra: Sequence[Step] = (),
) -> Unresolvable:
    """The error for requirements on ``package`` that no installable version meets."""
    clauses: list[str] = []
    for step in [s for r in requirements for s in r.steps] + list(extra):
        if step.clause() not in clauses:
            clauses.append(step.clause())
    ranges = list(dict.fromkeys(r.last.range for r in requirements))
    if missing:
        tail = f"{package} is not in the registry"
    elif len(ranges) <= 1:
        tail = f"no version of {package} satisfies {ranges[0] if ranges else 'the request'}"
    elif len(ranges) == 2:
        tail = f"no version of {package} satisfies both {ranges[0]} and {ranges[1]}"
    else:
        tail = f"no version of {package} satisfies all of {', '.join(ranges[:-1])} and {ranges[-1]}"
    relevant = [e for e in excluded if any(semver.satisfies(e.version, r, loose=True) for r in ranges)]
    if relevant:
        listed = "; ".join(str(e) for e in relevant[:5])
        tail += f" ({listed}{'; ...' if len(relevant) > 5 else ''})"
    # the chains on the conflict package come first; a long proof is cut short here and
    # kept whole in detail["because"]
    shown = clauses[:_MAX_CLAUSES]
    if len(clauses) > _MAX_CLAUSES:
        shown.append(f"and {len(clauses) - _MAX_CLAUSES} more (detail.because)")
    message = (", ".join(shown) + " — " if shown else "") + tail
    detail: dict[str, Any] = {
        "conflict": {"package": package, "requirements": [r.as_dict() for r in requirements]},
        "because": clauses,
        "excluded": [e.as_dict() for e in excluded],
    }
    if missing:
        detail["conflict"]["missing"] = True
    return Unresolvable(message, detail=detail)


@dataclass(frozen=True)
class Fact:
    """One external fact a dedupe failure rests on: ``source`` (None: the request), at
    ``versions``, declares ``target`` at ``range`` with edge ``kind``. ``empty``: no
    installable version of ``target`` is in ``range`` at all; ``missing``: no such package."""

    source: str | None
    versions: tuple[str, ...]
    target: str
    range: str
    kind: str = "prod"
    empty: bool = False
    missing: bool = False

    def step(self) -> Step:
        return Step(ROOT if self.source is None else label(self.source, self.versions), self.target, self.range,
                    self.kind)


def _chain(facts: Sequence[Fact], to: str | None) -> list[Fact]:
    """The shortest chain of requiring facts from the request to ``to`` (empty for the request)."""
    if to is None:
        return []
    came: dict[str | None, Fact | None] = {None: None}
    queue: deque[str | None] = deque([None])
    while queue:
        here = queue.popleft()
        for fact in facts:
            if fact.source == here and fact.kind != "peerOptional" and fact.target not in came:
                came[fact.target] = fact
                queue.append(fact.target)
    if to not in came:
        return []
    chain: list[Fact] = []
    node: str | None = to
    while node is not None:
        step = came[node]
        if step is None:
            break
        chain.append(step)
        node = step.source
    return chain[::-1]


def from_facts(facts: Sequence[Fact], excluded: dict[str, list[Exclusion]]) -> Unresolvable:
    """The error for an unsatisfiable set of facts: the package most of them meet on (one
    with no installable version in a required range first), and every chain leading there."""
    if not facts:
        return Unresolvable("the request cannot be satisfied", detail={"conflict": None, "because": []})
    counts = Counter(f.target for f in facts)
    package = max(counts, key=lambda name: (any(f.empty or f.missing for f in facts if f.target == name),
                                            counts[name], name))
    on_package = [f for f in facts if f.target == package]
    decisive = [f for f in on_package if f.empty or f.missing]
    if decisive:
        # one requirement that nothing can meet explains the failure on its own
        on_package = decisive[:1]
    requirements = []
    for fact in on_package:
        chain = _chain(facts, fact.source)
        requirements.append(Requirement((*(f.step() for f in chain), fact.step())))
    used = {s for r in requirements for s in r.steps}
    extra = [f.step() for f in facts if f.step() not in used]
    return unresolvable(
        package,
        requirements,
        excluded=excluded.get(package, []),
        missing=any(f.missing for f in on_package),
        extra=extra,
    )
