"""The resolve request: the body of ``POST /-/v1/resolve``, validated once at the boundary.

::

    {"dependencies": {NAME: RANGE}, "eager": [NAME],
     "strategy": {"version": "highest"|"lowest"|"prompt", "duplicate": "plugins"|"dedupe-all"|"isolate",
                  "security": "strict"|"audit"|"permissive"},
     "policy": {"capabilities": {"allow": [...]|null, "deny": [...]},
                "licenses": {"allow": [SPDX ids]}|null, "peer": "warn"|"error"},
     "framework": VERSION|null,
     "prefer": {NAME: [VERSION]}}

Everything but ``dependencies`` may be left out (defaults: highest, plugins, audit, warn).
``prefer`` names versions to keep where the ranges and the policy allow them (a client's
locked versions): a preferred version is chosen before any other, and when the policy excludes
it (``security=strict`` and an advisory) the lowest allowed version above it comes next, so a
security update moves a vulnerable package as little as it can and leaves the rest as locked.
It is part of the canonical form (and hash) only when it names something.
``duplicate=dedupe`` is read as ``dedupe-all`` (its name before ``plugins`` became the
default) and hashed as ``dedupe-all``: one meaning, one hash.
:meth:`ResolveRequest.from_body` reports every problem at once, as one
:class:`~eghact_common.errors.BadRequest` with ``code="invalid_request"`` and
``detail.problems``; given ``max_roots``, a request naming more roots is refused first, as
:class:`~eghact_common.errors.PayloadTooLarge` (413, ``too_many_roots``), before any name is
checked. :meth:`ResolveRequest.canonical` is the form the request is cached
under: sorted, defaults filled, ranges normalised, so that equal requests written
differently share one :attr:`ResolveRequest.hash`.
"""

from __future__ import annotations

import functools
import hashlib
import json
from collections.abc import Mapping
from typing import Annotated, Any, Literal, NoReturn

from pydantic import BaseModel, BeforeValidator, ConfigDict, StrictStr, ValidationError

from eghact_common import semver
from eghact_common.capabilities import InvalidCapability, capability_matches, parse_capability
from eghact_common.errors import BadRequest, PayloadTooLarge
from eghact_common.names import check_name
from eghact_common.spdx import InvalidLicense, parse_expression

from .provider import spec_kind

__all__ = ["CapabilityRules", "LicenceRules", "PolicyOptions", "ResolveRequest", "StrategyOptions"]

_MODEL = ConfigDict(frozen=True, extra="forbid")


def _duplicate_alias(value: object) -> object:
    return "dedupe-all" if value == "dedupe" else value


class StrategyOptions(BaseModel):
    model_config = _MODEL
    version: Literal["highest", "lowest", "prompt"] = "highest"
    #: plugins: one version per plugin, npm's nesting for plain libraries; dedupe-all: one
    #: version per name; isolate: npm's tree as npm builds it
    duplicate: Annotated[Literal["plugins", "dedupe-all", "isolate"], BeforeValidator(_duplicate_alias)] = "plugins"
    security: Literal["strict", "audit", "permissive"] = "audit"


class CapabilityRules(BaseModel):
    model_config = _MODEL
    #: None: every capability is allowed (only ``deny`` applies)
    allow: tuple[StrictStr, ...] | None = None
    deny: tuple[StrictStr, ...] = ()


class LicenceRules(BaseModel):
    model_config = _MODEL
    allow: tuple[StrictStr, ...]


class PolicyOptions(BaseModel):
    model_config = _MODEL
    capabilities: CapabilityRules = CapabilityRules()
    licenses: LicenceRules | None = None
    peer: Literal["warn", "error"] = "warn"


class ResolveRequest(BaseModel):
    """A validated resolve request (immutable). Build it with :meth:`from_body`."""

    model_config = ConfigDict(frozen=True, extra="forbid", ignored_types=(functools.cached_property,))

    dependencies: dict[StrictStr, StrictStr]
    eager: tuple[StrictStr, ...] = ()
    strategy: StrategyOptions = StrategyOptions()
    policy: PolicyOptions = PolicyOptions()
    framework: StrictStr | None = None
    prefer: dict[StrictStr, tuple[StrictStr, ...]] = {}

    @classmethod
    def from_body(cls, body: Any, *, max_roots: int | None = None) -> ResolveRequest:
        """Parse a decoded JSON body. Raises ``BadRequest(code="invalid_request")`` listing
        every problem found, or ``PayloadTooLarge(code="too_many_roots")`` when ``body`` names
        more than ``max_roots`` dependencies (None: no limit, for requests already stored)."""
        if not isinstance(body, Mapping):
            _refuse([f"the request must be a JSON object, not {type(body).__name__}"])
        deps = body.get("dependencies")
        if max_roots is not None and isinstance(deps, Mapping) and len(deps) > max_roots:
            # Before validating: checking each name costs in proportion to the count.
            raise PayloadTooLarge(
                f"a resolve request names at most {max_roots} dependencies (roots), not {len(deps)}",
                code="too_many_roots", detail={"limit": max_roots, "roots": len(deps)})
        problems: list[str] = []
        request: ResolveRequest | None = None
        try:
            request = cls.model_validate(body)
        except ValidationError as exc:
            problems.extend(_translate(exc))
        problems.extend(_semantic_problems(body))
        if problems or request is None:
            _refuse(problems or ["invalid request"])
        return request

    def with_strategy(self, **changes: str) -> ResolveRequest:
        """The same request with some strategy fields replaced."""
        return self.model_copy(update={"strategy": self.strategy.model_copy(update=changes)})

    def canonical(self) -> dict[str, Any]:
        """The JSON-able canonical form: keys sorted, defaults filled, ranges normalised
        (``semver.valid_range``), lists sorted and without repeats, ids in canonical spelling."""
        caps = self.policy.capabilities
        licences = self.policy.licenses
        framework = semver.parse(self.framework, loose=True) if self.framework is not None else None
        canonical: dict[str, Any] = {
            "dependencies": {name: _canonical_spec(self.dependencies[name]) for name in sorted(self.dependencies)},
            "eager": sorted(set(self.eager)),
            "framework": framework.version if framework is not None else None,
            "policy": {
                "capabilities": {
                    "allow": None if caps.allow is None else sorted({_canonical_pattern(p) for p in caps.allow}),
                    "deny": sorted({_canonical_pattern(p) for p in caps.deny}),
                },
                "licenses": None if licences is None else {
                    "allow": sorted({str(parse_expression(entry)) for entry in licences.allow})
                },
                "peer": self.policy.peer,
            },
            "strategy": self.strategy.model_dump(),
        }
        prefer = {name: sorted({semver.valid(v, loose=True) or v for v in versions})
                  for name, versions in sorted(self.prefer.items()) if versions}
        if prefer:
            # only when given: every request written before ``prefer`` keeps its hash
            canonical["prefer"] = prefer
        return canonical

    @functools.cached_property
    def hash(self) -> str:
        """sha256 (hex) of the canonical JSON: the request's cache key."""
        text = json.dumps(self.canonical(), sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        return hashlib.sha256(text.encode()).hexdigest()


def _refuse(problems: list[str]) -> NoReturn:
    raise BadRequest(
        "invalid resolve request: " + "; ".join(problems), code="invalid_request", detail={"problems": problems}
    )


def _canonical_spec(spec: str) -> str:
    kind = spec_kind(spec)
    if kind == "version":
        return semver.valid(spec.strip(), loose=True) or spec
    if kind == "range":
        return semver.valid_range(spec, loose=True) or spec
    return spec


def _canonical_pattern(pattern: str) -> str:
    if pattern == "*" or pattern.endswith((":*", ".*")):
        return pattern
    return str(parse_capability(pattern))


def _translate(exc: ValidationError) -> list[str]:
    problems = []
    for error in exc.errors():
        where = ".".join(str(part) for part in error["loc"]) or "request"
        problems.append(f"{where}: {error['msg']}")
    return problems


def _spec_problem(spec: str) -> str | None:
    if spec[:4].lower() == "npm:":
        return f"{spec!r}: npm: aliases are not supported by the resolver"
    if spec_kind(spec) == "unsupported":
        return f"{spec!r} is not a semver range, a version or a dist-tag"
    return None


def _mapping(value: object) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _semantic_problems(body: Mapping[str, Any]) -> list[str]:
    """The rules pydantic's types cannot say; each part is checked only if its type is right
    (pydantic has already reported it otherwise)."""
    problems: list[str] = []
    deps = body.get("dependencies")
    names: set[str] = set()
    if isinstance(deps, Mapping):
        for name, spec in deps.items():
            if not isinstance(name, str):
                continue
            names.add(name)
            problems.extend(f"dependencies[{name!r}]: invalid package name: {p}" for p in check_name(name, legacy=True))
            if isinstance(spec, str) and (why := _spec_problem(spec)):
                problems.append(f"dependencies[{name!r}]: {why}")
    eager = body.get("eager")
    if isinstance(eager, list | tuple) and isinstance(deps, Mapping):
        problems.extend(f"eager: {name!r} is not one of the dependencies" for name in eager
                        if isinstance(name, str) and name not in names)
    policy = _mapping(body.get("policy"))
    caps = _mapping(policy.get("capabilities"))
    for key in ("allow", "deny"):
        patterns = caps.get(key)
        for pattern in patterns if isinstance(patterns, list | tuple) else ():
            if isinstance(pattern, str):
                try:
                    capability_matches("dom:read", pattern)
                except InvalidCapability as exc:
                    problems.append(f"policy.capabilities.{key}: {exc}")
    licences = _mapping(policy.get("licenses"))
    allow = licences.get("allow")
    for entry in allow if isinstance(allow, list | tuple) else ():
        if isinstance(entry, str):
            try:
                parse_expression(entry)
            except InvalidLicense as exc:
                problems.append(f"policy.licenses.allow: {exc}")
    prefer = _mapping(body.get("prefer"))
    for name, versions in prefer.items():
        if isinstance(name, str) and check_name(name, legacy=True):
            problems.append(f"prefer[{name!r}]: invalid package name")
        for version in versions if isinstance(versions, list | tuple) else ():
            if isinstance(version, str) and semver.valid(version, loose=True) is None:
                problems.append(f"prefer[{name!r}]: {version!r} is not a version")
    framework = body.get("framework")
    if isinstance(framework, str) and semver.parse(framework, loose=True) is None:
        problems.append(f"framework: {framework!r} is not a version")
    return problems
