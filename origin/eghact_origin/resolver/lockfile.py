"""``eghact-lock.json`` (DESIGN §4): build it from a resolved graph, write it, read it back.

The bytes are a function of the content: every object is built in a fixed key order (packages by
key, dependencies by name, the request with sorted keys) and every list the solvers might
produce in a set's order (capabilities) is sorted, so equal resolutions give equal bytes on every
machine -- what lets an edge compare and cache them by digest. ``lockfile_bytes`` keeps that key
order rather than sorting keys, so ``lockfileVersion`` and each package's ``name`` come first.
"""

from __future__ import annotations

import json
from typing import Any

from eghact_common.errors import BadRequest
from eghact_origin.resolver.graph import Node, ResolvedGraph

__all__ = ["LOCKFILE_VERSION", "InvalidLockfile", "build_lockfile", "lockfile_bytes", "read_lockfile"]

LOCKFILE_VERSION = 1


class InvalidLockfile(BadRequest, ValueError):
    """Bytes that are not a version-1 lockfile; ``problems`` lists every problem found."""

    code = "invalid_lockfile"

    def __init__(self, problems: list[str]):
        self.problems = list(problems)
        super().__init__("invalid lockfile: " + "; ".join(self.problems), detail={"problems": self.problems})


def build_lockfile(
    graph: ResolvedGraph,
    *,
    request: dict[str, Any],
    request_hash: str,
    registry: str,
    load_plan: dict[str, Any],
    cycles: list[list[str]],
) -> dict[str, Any]:
    """The lockfile of ``graph``, resolved for ``request`` (hashed ``request_hash``) from ``registry``.

    ``load_plan`` is :func:`~eghact_origin.resolver.loadplan.build_load_plan`'s result and
    ``cycles`` :func:`~eghact_origin.resolver.tarjan.cycles`'; both are copied in as they are.
    Everything is copied through JSON, so the result shares nothing with the arguments and a
    value JSON cannot carry (NaN, a set, an object) raises ``ValueError``/``TypeError`` here
    rather than when the lockfile is written.
    """
    return {
        "lockfileVersion": LOCKFILE_VERSION,
        "request": _json_copy(request, sort_keys=True),
        "hash": request_hash,
        "registry": registry,
        "packages": {key: _package(graph.nodes[key]) for key in sorted(graph.nodes)},
        "cycles": _json_copy(cycles),
        "warnings": [_json_copy(warning, sort_keys=True) for warning in graph.warnings],
        "loadPlan": _json_copy(load_plan),
    }


def lockfile_bytes(lock: dict[str, Any]) -> bytes:
    """``lock`` as the file holds it: UTF-8 JSON, 2-space indent, a trailing newline.

    Keys keep their order (see the module docstring), so the same dict always gives the same
    bytes, and ``lockfile_bytes(read_lockfile(data)) == data`` for bytes this function wrote.
    """
    return (json.dumps(lock, indent=2, ensure_ascii=False, allow_nan=False) + "\n").encode()


def read_lockfile(data: bytes) -> dict[str, Any]:
    """Parse a lockfile and check its shape; raises :class:`InvalidLockfile` listing every problem.

    Checked: the fields and their JSON types, ``lockfileVersion == 1``, that cycles and chunks
    name packages the lockfile holds, that no plugin is in two chunks, and that every chunk
    requires only chunks listed before it. Unknown fields are allowed, for newer writers.
    """
    try:
        lock = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InvalidLockfile([f"not UTF-8 JSON: {exc}"]) from exc
    problems: list[str] = []
    if not isinstance(lock, dict):
        raise InvalidLockfile([f"expected a JSON object, got {_kind(lock)}"])

    version = lock.get("lockfileVersion")
    if type(version) is not int or version != LOCKFILE_VERSION:
        problems.append(f"lockfileVersion: expected {LOCKFILE_VERSION}, got {version!r}")
    _expect(problems, lock, "request", dict, "")
    _expect(problems, lock, "hash", str, "")
    _expect(problems, lock, "registry", str, "")
    packages = _expect(problems, lock, "packages", dict, "")
    if packages is not None:
        for key, entry in packages.items():
            _check_package(problems, f'packages["{key}"]', entry)
    known = set(packages) if packages is not None else None
    cycles = _expect(problems, lock, "cycles", list, "")
    for i, cycle in enumerate(cycles or ()):
        if isinstance(cycle, list):
            _check_keys(problems, f"cycles[{i}]", cycle, known)
        else:
            problems.append(f"cycles[{i}]: expected an array, got {_kind(cycle)}")
    warnings = _expect(problems, lock, "warnings", list, "")
    for i, warning in enumerate(warnings or ()):
        if not isinstance(warning, dict):
            problems.append(f"warnings[{i}]: expected an object, got {_kind(warning)}")
    plan = _expect(problems, lock, "loadPlan", dict, "")
    if plan is not None:
        _check_load_plan(problems, plan, known)
    if problems:
        raise InvalidLockfile(problems)
    return lock


# ---- building ----------------------------------------------------------------------------------------

def _package(node: Node) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "name": node.name,
        "version": node.version,
        "resolved": node.resolved,
        "integrity": node.integrity,
        "dependencies": {name: node.dependencies[name] for name in sorted(node.dependencies)},
        "capabilities": sorted(node.capabilities),
    }
    if node.disabled_capabilities:
        entry["disabledCapabilities"] = sorted(node.disabled_capabilities)
    entry["license"] = node.license
    entry["type"] = node.type
    # npm's habit: flags appear only when set, so most entries stay short
    if node.optional:
        entry["optional"] = True
    if node.peer:
        entry["peer"] = True
    if node.deprecated is not None:
        entry["deprecated"] = node.deprecated
    entry["advisories"] = [_json_copy(advisory, sort_keys=True) for advisory in node.advisories]
    return entry


def _json_copy(value: Any, *, sort_keys: bool = False) -> Any:
    return json.loads(json.dumps(value, sort_keys=sort_keys, allow_nan=False))


# ---- reading -----------------------------------------------------------------------------------------

# field -> (JSON type, required); the flags may only be true, as the writer omits them otherwise
_PACKAGE_FIELDS: dict[str, tuple[type | tuple[type, ...], bool]] = {
    "name": (str, True),
    "version": (str, True),
    "resolved": (str, True),
    "integrity": (str, True),
    "dependencies": (dict, True),
    "capabilities": (list, True),
    "disabledCapabilities": (list, False),
    "license": ((str, type(None)), True),
    "type": (str, True),
    "optional": (bool, False),
    "peer": (bool, False),
    "deprecated": (str, False),
    "advisories": (list, True),
}
_CHUNK_FIELDS: dict[str, type] = {"id": str, "plugins": list, "mode": str, "requires": list, "bytes": int}


def _check_package(problems: list[str], where: str, entry: Any) -> None:
    if not isinstance(entry, dict):
        problems.append(f"{where}: expected an object, got {_kind(entry)}")
        return
    for field, (expected, required) in _PACKAGE_FIELDS.items():
        if field in entry:
            _expect(problems, entry, field, expected, where)
        elif required:
            problems.append(f"{where}.{field}: missing")
    if entry.get("optional") is False or entry.get("peer") is False:
        problems.append(f"{where}: optional and peer appear only when true")
    dependencies = entry.get("dependencies")
    if isinstance(dependencies, dict):
        for name, spec in dependencies.items():
            if not isinstance(spec, str):
                problems.append(f"{where}.dependencies[{name!r}]: expected a string, got {_kind(spec)}")
    for field in ("capabilities", "disabledCapabilities"):
        _check_strings(problems, f"{where}.{field}", entry.get(field))
    advisories = entry.get("advisories")
    if isinstance(advisories, list):
        for i, advisory in enumerate(advisories):
            if not isinstance(advisory, dict):
                problems.append(f"{where}.advisories[{i}]: expected an object, got {_kind(advisory)}")


def _check_load_plan(problems: list[str], plan: dict[str, Any], known: set[str] | None) -> None:
    chunks = _expect(problems, plan, "chunks", list, "loadPlan")
    prefetch = _expect(problems, plan, "prefetch", dict, "loadPlan")
    seen_ids: set[str] = set()
    placed: dict[str, str] = {}  # plugin -> the chunk that holds it
    for i, chunk in enumerate(chunks or ()):
        where = f"loadPlan.chunks[{i}]"
        if not isinstance(chunk, dict):
            problems.append(f"{where}: expected an object, got {_kind(chunk)}")
            continue
        values = {field: _expect(problems, chunk, field, expected, where) for field, expected in _CHUNK_FIELDS.items()}
        chunk_id = values["id"]
        if chunk_id is not None:
            where = f"loadPlan.chunks[{chunk_id!r}]"
            if chunk_id in seen_ids:
                problems.append(f"{where}: listed twice")
        if values["mode"] is not None and values["mode"] not in ("eager", "lazy"):
            problems.append(f"{where}.mode: expected 'eager' or 'lazy', got {values['mode']!r}")
        if values["bytes"] is not None and values["bytes"] < 0:
            problems.append(f"{where}.bytes: negative")
        if _check_keys(problems, f"{where}.plugins", values["plugins"], known):
            for key in values["plugins"]:
                if key in placed:
                    problems.append(f"{where}.plugins: {key!r} is already in chunk {placed[key]!r}")
                placed.setdefault(key, str(chunk_id))
        if _check_strings(problems, f"{where}.requires", values["requires"]):
            for needed in values["requires"]:
                if needed not in seen_ids:
                    problems.append(f"{where}.requires: {needed!r} is not a chunk listed before it")
        if chunk_id is not None:
            seen_ids.add(chunk_id)
    for chunk_id, likely in (prefetch or {}).items():
        if not isinstance(likely, list):
            problems.append(f"loadPlan.prefetch[{chunk_id!r}]: expected an array, got {_kind(likely)}")
        elif _check_strings(problems, f"loadPlan.prefetch[{chunk_id!r}]", likely) and chunks is not None:
            for other in [chunk_id, *likely]:
                if other not in seen_ids:
                    problems.append(f"loadPlan.prefetch[{chunk_id!r}]: {other!r} is not a chunk of the plan")


def _expect(problems: list[str], obj: dict[str, Any], field: str, expected: Any, where: str) -> Any:
    """``obj[field]`` when it has the ``expected`` JSON type, else None with the problem recorded."""
    path = f"{where}.{field}" if where else field
    if field not in obj:
        problems.append(f"{path}: missing")
        return None
    value = obj[field]
    # bool is an int to isinstance(), never to JSON
    if (isinstance(value, bool) and expected is not bool) or not isinstance(value, expected):
        problems.append(f"{path}: expected {_type_name(expected)}, got {_kind(value)}")
        return None
    return value


def _check_strings(problems: list[str], where: str, values: Any) -> bool:
    """Whether ``values`` (already type-checked, or None) is a list of strings; records the rest."""
    if not isinstance(values, list):
        return False
    bad = [i for i, value in enumerate(values) if not isinstance(value, str)]
    for i in bad:
        problems.append(f"{where}[{i}]: expected a string, got {_kind(values[i])}")
    return not bad


def _check_keys(problems: list[str], where: str, values: Any, known: set[str] | None) -> bool:
    """Like :func:`_check_strings`, and every string must be a package key when those are known."""
    if not _check_strings(problems, where, values):
        return False
    missing = [key for key in values if known is not None and key not in known]
    for key in missing:
        problems.append(f"{where}: {key!r} is not in packages")
    return not missing


_JSON_KINDS = {dict: "an object", list: "an array", str: "a string", int: "an integer", float: "a number",
               bool: "a boolean", type(None): "null"}


def _kind(value: Any) -> str:
    return _JSON_KINDS.get(type(value), type(value).__name__)


def _type_name(expected: Any) -> str:
    options = expected if isinstance(expected, tuple) else (expected,)
    return " or ".join(_JSON_KINDS[option] for option in options)
