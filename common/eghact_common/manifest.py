"""The Eghact plugin manifest: an npm package.json (or ``eghact.yaml``) with an ``eghact`` block.

::

    {"name": "@acme/chart", "version": "1.2.3", "license": "MIT OR Apache-2.0",
     "dependencies": {...}, "optionalDependencies": {...}, "peerDependencies": {...},
     "peerDependenciesMeta": {"x": {"optional": true}}, "main": "dist/index.js",
     "eghact": {"version": "^2.0.0", "type": "component",
                "capabilities": {"required": ["dom:read"], "optional": ["network:fetch:*.api.com"]},
                "exports": {"main": "dist/index.js", "types": "dist/index.d.ts", "style": "dist/style.css"},
                "metadata": {"category": "charts", "keywords": [...],
                             "compatibility": {"browsers": [...], "node": ">=18"}}}}

The document is what ``npm publish`` sends, so every npm field we do not model is ignored,
never refused, and the npm fields we do read follow npm's own leniency: they are read
through :func:`~eghact_common.npm_leniency.lenient_view`, and what npm only warns about is
in :attr:`Manifest.warnings`, not a problem. A package without an ``eghact`` block is a plain
npm package (type ``library``). The ``eghact`` block is our contract and stays strict:
inside it unknown keys are refused (a misspelt ``capabilites`` must not quietly drop a
plugin's declared capabilities), and a plugin needs a valid SPDX licence.

Validation reports every problem at once, as one :class:`InvalidManifest` whose problems
each start with the field path (``eghact.capabilities.required[1]: unknown capability
'gpu:mine'``), whether it comes from pydantic's type checks or from the rules here.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal, get_args

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ModelWrapValidatorHandler,
    PlainSerializer,
    PlainValidator,
    PrivateAttr,
    StrictBool,
    ValidationError,
    model_validator,
)

from eghact_common import semver
from eghact_common.capabilities import Capability, InvalidCapability, parse_capability
from eghact_common.errors import InvalidManifest
from eghact_common.names import check_name
from eghact_common.npm_leniency import NpmWarning, check_dependency_spec, lenient_view
from eghact_common.spdx import InvalidLicense, LicenseExpr, parse_expression

__all__ = ["PLUGIN_TYPES", "Manifest", "NpmWarning", "check_dependency_spec"]

PluginType = Literal["component", "transformer", "middleware", "theme"]
PLUGIN_TYPES: tuple[str, ...] = get_args(PluginType)

_PERSON = re.compile(r"^\s*(?P<name>[^<(]*?)\s*(?:<(?P<email>[^>]*)>)?\s*(?:\((?P<url>[^)]*)\))?\s*$")
_SCHEME = re.compile(r"[a-zA-Z][a-zA-Z0-9+.-]*:")


# ------------------------------------------------------------------------- field rules


def _valid_name(name: str) -> str:
    # npm's errors only: the rules npm added later are warnings (npm_leniency), as they are
    # for the npm registry, which serves `events` and `JSONStream`.
    problems = check_name(name, legacy=True)
    if problems:
        raise ValueError(f"invalid package name {name!r}: " + "; ".join(problems))
    return name


def _valid_version(version: str) -> str:
    # libnpmpublish sends semver.clean(version) and refuses what does not clean (EBADSEMVER).
    normalised = semver.clean(version)
    if normalised is None:
        raise ValueError(f"invalid version {version!r}: not a semver version (MAJOR.MINOR.PATCH)")
    return normalised


def _valid_range(text: str) -> str:
    if semver.valid_range(text) is None:
        raise ValueError(f"invalid semver range {text!r}")
    return text


def _valid_license(text: str) -> str:
    try:
        return str(parse_expression(text))
    except InvalidLicense as exc:
        raise ValueError(str(exc)) from None


def _valid_export_path(path: str) -> str:
    if not path:
        raise ValueError("an export path must not be empty")
    if path.startswith(("/", "\\")) or _SCHEME.match(path):
        raise ValueError(f"{path!r}: an export path must be relative to the package root")
    if ".." in re.split(r"[/\\]", path):
        raise ValueError(f"{path!r}: an export path must not contain '..'")
    return path


def _to_capability(value: object) -> Capability:
    if isinstance(value, Capability):
        return value
    if not isinstance(value, str):
        raise ValueError(f"a capability must be a string, not {type(value).__name__}")
    return parse_capability(value)  # InvalidCapability is a ValueError: pydantic reports it


def _empty_if_none(value: object) -> object:
    return () if value is None else value


def _empty_map_if_none(value: object) -> object:
    return {} if value is None else value


def _split_keywords(value: object) -> object:
    # normalize-package-data turns a keywords string into a list; old packages rely on it.
    if isinstance(value, str):
        return [word.strip() for word in value.split(",") if word.strip()]
    return _empty_if_none(value)


def _person(value: object) -> object:
    if value is None or isinstance(value, Mapping):
        return value
    if isinstance(value, str):
        match = _PERSON.match(value)
        if match:
            return {key: text for key, text in match.groupdict().items() if text}
        return {"name": value.strip()}
    raise ValueError("author must be 'Name <email> (url)' or an object {name, email, url}")


Name = Annotated[str, AfterValidator(_valid_name)]
Range = Annotated[str, AfterValidator(_valid_range)]
ExportPath = Annotated[str, AfterValidator(_valid_export_path)]
# Names and specs are npm's business: what a registry cannot serve is a warning (npm_leniency).
DependencyMap = Annotated[dict[str, str], BeforeValidator(_empty_map_if_none)]
CapabilityItem = Annotated[Capability, PlainValidator(_to_capability), PlainSerializer(str, return_type=str)]
CapabilityList = Annotated[tuple[CapabilityItem, ...], BeforeValidator(_empty_if_none)]
Strings = Annotated[tuple[str, ...], BeforeValidator(_empty_if_none)]

_CLOSED = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)
_OPEN = ConfigDict(frozen=True, extra="ignore", populate_by_name=True)


# ------------------------------------------------------------------------------ models


class Person(BaseModel):
    model_config = _OPEN
    name: str | None = None
    email: str | None = None
    url: str | None = None


class Capabilities(BaseModel):
    model_config = _CLOSED
    required: CapabilityList = ()
    optional: CapabilityList = ()


class Exports(BaseModel):
    model_config = _CLOSED
    main: ExportPath | None = None
    types: ExportPath | None = None
    style: ExportPath | None = None


class Compatibility(BaseModel):
    model_config = _OPEN
    browsers: Strings = ()
    node: Range | None = None


class Metadata(BaseModel):
    model_config = _OPEN
    category: str | None = None
    keywords: Strings = ()
    compatibility: Compatibility | None = None


class EghactBlock(BaseModel):
    model_config = _CLOSED
    version: Range
    type: PluginType
    capabilities: Capabilities = Capabilities()
    exports: Exports = Exports()
    metadata: Metadata = Metadata()


class PeerMeta(BaseModel):
    model_config = _OPEN
    optional: StrictBool = False


class Manifest(BaseModel):
    """A validated manifest (immutable). Build it with the ``from_*`` constructors."""

    model_config = _OPEN

    name: Name
    version: Annotated[str, AfterValidator(_valid_version)]
    description: str | None = None
    author: Annotated[Person | None, BeforeValidator(_person)] = None
    license: Annotated[str, AfterValidator(_valid_license)] | None = None
    npm_keywords: Annotated[tuple[str, ...], BeforeValidator(_split_keywords)] = Field((), alias="keywords")
    dependencies: DependencyMap = Field(default_factory=dict)
    optional_dependencies: DependencyMap = Field(default_factory=dict, alias="optionalDependencies")
    peer_dependencies: DependencyMap = Field(default_factory=dict, alias="peerDependencies")
    peer_dependencies_meta: Annotated[dict[str, PeerMeta], BeforeValidator(_empty_map_if_none)] = Field(
        default_factory=dict, alias="peerDependenciesMeta"
    )
    main: str | None = None
    eghact: EghactBlock | None = None
    _warnings: tuple[NpmWarning, ...] = PrivateAttr(default=())

    @model_validator(mode="wrap")
    @classmethod
    def _every_problem(cls, data: Any, handler: ModelWrapValidatorHandler[Manifest]) -> Manifest:
        # pydantic stops at nothing within a field but skips model-level checks once a field
        # fails; the cross-field rules run on the raw document so that they are listed too.
        warnings: list[NpmWarning] = []
        if isinstance(data, Mapping) and not isinstance(data, Manifest):
            data, warnings = lenient_view(data)
        problems = _cross_field_problems(data) if isinstance(data, Mapping) else []
        try:
            manifest = handler(data)
        except ValidationError as exc:
            raise InvalidManifest(_translate(exc) + problems) from None
        if problems:
            raise InvalidManifest(problems)
        manifest._warnings = tuple(warnings)
        return manifest

    # ------------------------------------------------------------------ constructors

    @classmethod
    def from_package_json(cls, data: Mapping[str, Any]) -> Manifest:
        """From a parsed package.json / npm version document. Raises :class:`InvalidManifest`."""
        if not isinstance(data, Mapping):
            raise InvalidManifest([f"manifest must be a JSON object, not {type(data).__name__}"])
        return cls.model_validate(data)

    @classmethod
    def from_yaml(cls, text: str) -> Manifest:
        """From the text of an ``eghact.yaml``. Raises :class:`InvalidManifest`."""
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise InvalidManifest([f"eghact.yaml: not valid YAML: {' '.join(str(exc).split())}"]) from None
        if not isinstance(data, Mapping):
            raise InvalidManifest([f"eghact.yaml: must be a mapping, not {type(data).__name__}"])
        return cls.model_validate(data)

    @classmethod
    def from_file(cls, path: str | os.PathLike[str]) -> Manifest:
        """From ``package.json`` or ``eghact.yaml`` / ``eghact.yml``, chosen by the file name."""
        path = Path(path)
        if path.name in ("eghact.yaml", "eghact.yml"):
            return cls.from_yaml(path.read_text(encoding="utf-8-sig"))
        if path.name != "package.json":
            raise InvalidManifest([f"{path.name}: not a manifest file (expected package.json or eghact.yaml)"])
        try:
            data = json.loads(path.read_text(encoding="utf-8-sig"))
        except json.JSONDecodeError as exc:
            raise InvalidManifest([f"package.json: not valid JSON: {exc}"]) from None
        return cls.from_package_json(data)

    # -------------------------------------------------------------------- accessors

    @property
    def warnings(self) -> tuple[NpmWarning, ...]:
        """What npm accepts with a warning (or fixes) in the npm fields: the publish response
        lists them. Empty for a manifest npm would not remark on."""
        return self._warnings

    @property
    def type(self) -> str:
        """The plugin type, or ``library`` for a plain npm package."""
        return self.eghact.type if self.eghact else "library"

    @property
    def framework_range(self) -> str | None:
        """The Eghact versions the plugin works with (a semver range), None for a library."""
        return self.eghact.version if self.eghact else None

    @property
    def capabilities_required(self) -> tuple[Capability, ...]:
        return self.eghact.capabilities.required if self.eghact else ()

    @property
    def capabilities_optional(self) -> tuple[Capability, ...]:
        return self.eghact.capabilities.optional if self.eghact else ()

    @property
    def peer_optional(self) -> frozenset[str]:
        """Peer dependencies that ``peerDependenciesMeta`` marks optional (as arborist reads it,
        an entry for a name that is not a peer declares nothing)."""
        return frozenset(name for name, meta in self.peer_dependencies_meta.items()
                         if meta.optional and name in self.peer_dependencies)

    @property
    def license_expression(self) -> LicenseExpr | None:
        return parse_expression(self.license) if self.license is not None else None

    @property
    def keywords(self) -> tuple[str, ...]:
        """npm keywords, then ``eghact.metadata.keywords``, without repeats, in order."""
        extra = self.eghact.metadata.keywords if self.eghact else ()
        return tuple(dict.fromkeys((*self.npm_keywords, *extra)))

    @property
    def category(self) -> str | None:
        return self.eghact.metadata.category if self.eghact else None

    @property
    def exports(self) -> dict[str, str]:
        """Entry points: npm ``main``, overridden by what ``eghact.exports`` declares."""
        exports = {"main": self.main} if self.main else {}
        if self.eghact:
            exports.update(self.eghact.exports.model_dump(exclude_none=True))
        return exports

    def to_summary(self) -> dict[str, Any]:
        """The small JSON-able record the registry keeps for search and filters."""
        return {
            "type": self.type,
            "framework": self.framework_range,
            "capabilities": {
                "required": [str(cap) for cap in self.capabilities_required],
                "optional": [str(cap) for cap in self.capabilities_optional],
            },
            "category": self.category,
            "keywords": list(self.keywords),
            "license": self.license,
        }


# --------------------------------------------------------------------------- problems


def _path(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        if part == "[key]":
            continue
        if isinstance(part, int):
            out += f"[{part}]"
        elif re.fullmatch(r"[A-Za-z_][A-Za-z0-9_-]*", part):  # else quoted: `dependencies["@a/b"]`
            out += f".{part}" if out else part
        else:
            out += f"[{json.dumps(part)}]"
    return out or "manifest"


def _version_like(loc: tuple[int | str, ...]) -> bool:
    return loc[-1] in ("version", "node")


def _closed_fields() -> dict[str, tuple[str, ...]]:
    models: dict[str, type[BaseModel]] = {
        "eghact": EghactBlock,
        "eghact.capabilities": Capabilities,
        "eghact.exports": Exports,
    }
    return {where: tuple(model.model_fields) for where, model in models.items()}


def _translate(exc: ValidationError) -> list[str]:
    problems = []
    for error in exc.errors(include_url=False):
        where, kind, got = _path(error["loc"]), error["type"], error.get("input")
        if kind == "value_error":
            message = str(error["ctx"]["error"])
        elif kind == "missing":
            message = "required"
        elif kind == "extra_forbidden":
            known = _closed_fields().get(_path(error["loc"][:-1]), ())
            message = "unknown field" + (f" (expected one of: {', '.join(known)})" if known else "")
        elif kind in ("model_type", "dict_type", "model_attributes_type"):
            message = f"expected an object, got {type(got).__name__}"
        else:
            message = error["msg"][:1].lower() + error["msg"][1:]
            if isinstance(got, str | int | float | bool) or got is None:
                message += f", got {got!r}"[:120]
            if kind == "string_type" and isinstance(got, int | float) and _version_like(error["loc"]):
                message += " (quote it: in YAML an unquoted 1.0 is a number)"
        problems.append(f"{where}: {message}")
    return problems


def _capability_key(value: object) -> str | None:
    try:
        return str(parse_capability(value)) if isinstance(value, str) else None
    except InvalidCapability:
        return None  # reported by the field check


def _cross_field_problems(data: Mapping[str, Any]) -> list[str]:
    """The rules that span fields, read off the raw document defensively (its types may be wrong)."""
    problems: list[str] = []
    block = data.get("eghact")
    if isinstance(block, Mapping) and data.get("license") is None:
        problems.append("license: required for Eghact plugins (an SPDX expression, or UNLICENSED)")
    caps = block.get("capabilities") if isinstance(block, Mapping) else None
    if isinstance(caps, Mapping):
        seen: dict[str, str] = {}
        for group in ("required", "optional"):
            items = caps.get(group)
            for index, item in enumerate(items if isinstance(items, list | tuple) else ()):
                key = _capability_key(item)
                if key is None:
                    continue
                where = f"eghact.capabilities.{group}[{index}]"
                if key in seen:
                    other = seen[key]
                    why = "listed twice" if other == group else "both required and optional"
                    problems.append(f"{where}: {key!r} is {why}")
                else:
                    seen[key] = group
    return problems
