"""npm's leniency for the npm fields of a manifest: what npm accepts, we accept.

A version document is what a real npm client sends, written by authors over fifteen years:
``"main": false``, a licence as an object, a core-module name such as ``events``, a
``peerDependenciesMeta`` entry for a package that is not a peer. The npm registry stores all
of them, and each refusal here would break the install of every tree that contains one. So
the npm fields follow npm's own rules, and only the ``eghact`` block (our contract) stays
strict:

- :func:`lenient_view` returns the document as npm's ``normalize-package-data`` (``fixer.js``)
  would leave the fields the manifest model reads, and one :class:`NpmWarning` per thing npm
  fixes, drops or warns about. The *stored* document is never changed: it is kept as
  published, as the npm registry keeps it; the view only feeds our model (search summary,
  checks) and the warnings go back in the publish response.
- What npm itself refuses stays refused by the model: a name invalid even for old packages
  (``validate-npm-package-name``'s errors), a version that is not semver after
  ``semver.clean`` (libnpmpublish's ``EBADSEMVER``), a manifest that is not an object.

Every rule below names the npm source it follows; DESIGN §2 lists them.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from eghact_common import semver
from eghact_common.names import check_name, name_warnings
from eghact_common.spdx import InvalidLicense, parse_expression

__all__ = ["REGISTRY_ONLY", "NpmWarning", "alias_target", "check_dependency_spec", "js_truthy", "lenient_view"]

REGISTRY_ONLY = "registry packages only: mirrors and edges cannot serve git/file/URL dependencies"
_DIST_TAG = re.compile(r"[a-zA-Z][a-zA-Z0-9._-]*")
_SCHEME = re.compile(r"[a-zA-Z][a-zA-Z0-9+.-]*:")
_TARBALL = re.compile(r"\.(?:tgz|tar\.gz|tar)$", re.IGNORECASE)

# depObjectify's split of a dependency written as "name@range" or "name >=1" (fixer.js).
_DEP_SPLIT = re.compile(r"(:?[@\s><=])")
_DEP_LIST_SPLIT = re.compile(r"[\n\r\s\t ,]+")
_KEYWORD_SPLIT = re.compile(r",\s+")
# normalize-package-data objectifies these two (optionalDependencies is merged into
# dependencies by npm, which we keep apart: the resolver needs to know which are optional).
_OBJECTIFIED = ("dependencies", "optionalDependencies")
DEPENDENCY_MAPS = ("dependencies", "optionalDependencies", "peerDependencies")


@dataclass(frozen=True)
class NpmWarning:
    """A problem npm accepts: ``field`` (a path as in manifest problems), a stable ``code``, and
    a message for a person that says what the registry made of it."""

    field: str
    code: str
    message: str

    def to_json(self) -> dict[str, str]:
        return {"field": self.field, "code": self.code, "message": self.message}


def js_truthy(value: object) -> bool:
    """JavaScript's truthiness (arborist reads ``peerDependenciesMeta[name].optional`` so):
    every object and array is true, even empty ones."""
    if isinstance(value, Mapping | list | tuple):
        return True
    return bool(value)


def lenient_view(doc: Mapping[str, Any]) -> tuple[dict[str, Any], list[NpmWarning]]:
    """A shallow copy of ``doc`` whose npm fields are in the shape the model reads, and what
    npm would have warned about. The ``eghact`` block is passed through untouched."""
    view = dict(doc)
    warnings: list[NpmWarning] = []
    plugin = isinstance(doc.get("eghact"), Mapping)

    def warn(field: str, code: str, message: str) -> None:
        warnings.append(NpmWarning(field, code, message))

    _name(view, warn)
    _description(view, warn)
    _people(view, warn)
    _keywords(view, warn)
    if not plugin:  # a plugin's licence is part of the eghact contract: the model checks it
        _license(view, warn)
    for field in DEPENDENCY_MAPS:
        _dependencies(view, field, warn)
    _peer_meta(view, warn)
    _main(view, warn)
    return view, warnings


_Warn = Callable[[str, str, str], None]


def _range_or_tag_problem(spec: str) -> str | None:
    if semver.valid_range(spec) is not None or _DIST_TAG.fullmatch(spec):
        return None
    return f"invalid dependency spec {spec!r}: not a semver range, a dist-tag or an npm: alias"


def alias_target(spec: str) -> tuple[str, str] | None:
    """``npm:real@^2`` (or ``npm:@scope/real@^2``, ``npm:real``): the package npm installs
    under the alias, as (name, range); None for anything else."""
    if spec[:4].lower() != "npm:":
        return None
    rest = spec[4:].strip()
    at = rest.find("@", 1)  # a scope's leading "@" is part of the name
    name, target = (rest, "*") if at < 0 else (rest[:at], rest[at + 1:] or "*")
    return (name, target) if name else None


def check_dependency_spec(spec: str) -> str | None:
    """Why ``spec`` cannot be a dependency served by a registry, or None when it can.

    Accepted: a semver range (``^1.2.0``, ``1.x || >=2.5``, ``""``), a dist-tag (``latest``),
    or an alias ``npm:other-name@range``. Git, URL, file, link and workspace specs are
    not, as npm-package-arg would read them (a ``/`` means a path or a GitHub shorthand; a
    name ending ``.tgz`` is a local tarball). npm publishes them all: the answer is a warning.
    """
    if spec[:4].lower() == "npm:":
        name, wanted = alias_target(spec) or ("", "")
        problems = check_name(name, legacy=True)
        if problems:
            return f"invalid alias target {name!r}: " + "; ".join(problems)
        return _range_or_tag_problem(wanted)
    stripped = spec.strip()
    if (
        _SCHEME.match(stripped)
        or "/" in stripped
        or "\\" in stripped
        or stripped.startswith(".")
        or _TARBALL.search(stripped)
    ):
        return f"{spec!r}: {REGISTRY_ONLY}"
    return _range_or_tag_problem(spec)


def _name(view: dict[str, Any], warn: _Warn) -> None:
    # validate-npm-package-name: its "warnings" (core module names, capitals, length, ~'!()*)
    # keep validForOldPackages true; npm installs such packages. Its errors stay refusals.
    name = view.get("name")
    if isinstance(name, str) and not check_name(name, legacy=True):
        for problem in name_warnings(name):
            warn("name", "name_legacy", f"{problem}: valid for existing npm packages only")


def _description(view: dict[str, Any], warn: _Warn) -> None:
    # fixDescriptionField: a description that is not a string is deleted (nonStringDescription).
    if "description" in view and view["description"] is not None and not isinstance(view["description"], str):
        warn("description", "description_not_string", "'description' field should be a string; ignored")
        del view["description"]


def _people(view: dict[str, Any], warn: _Warn) -> None:
    # fixPeople: a "Name <email> (url)" string becomes {name, email, url}; an object keeps
    # name/email/url (and npm's old web/mail); anything else unParsePerson turns into {}.
    author = view.get("author")
    if author is None or isinstance(author, str):
        return
    if isinstance(author, Mapping):
        person = {"name": author.get("name"), "email": author.get("email", author.get("mail")),
                  "url": author.get("url", author.get("web"))}
        kept = {k: v for k, v in person.items() if isinstance(v, str)}
        if len(kept) != sum(v is not None for v in person.values()):
            warn("author", "author_invalid", "author fields must be strings; the others are ignored")
        view["author"] = kept
        return
    warn("author", "author_invalid", "author must be 'Name <email> (url)' or an object {name, email, url}; ignored")
    del view["author"]


def _keywords(view: dict[str, Any], warn: _Warn) -> None:
    # fixKeywordsField: a string is split on ", "; a non-array is deleted (nonArrayKeywords);
    # entries that are not non-empty strings are dropped (nonStringKeyword).
    keywords = view.get("keywords")
    if keywords is None:
        return
    if isinstance(keywords, str):
        keywords = _KEYWORD_SPLIT.split(keywords)
    if not isinstance(keywords, list | tuple):
        warn("keywords", "keywords_not_array", "keywords should be an array of strings; ignored")
        del view["keywords"]
        return
    kept = [k for k in keywords if isinstance(k, str) and k]
    if len(kept) != len(keywords):
        warn("keywords", "keyword_not_string", "keywords should be an array of strings; the others are ignored")
    view["keywords"] = kept


def _license(view: dict[str, Any], warn: _Warn) -> None:
    # fixLicenseField: a licence that is missing or not a valid SPDX expression is a warning
    # (missingLicense, invalidLicense), never a refusal: `{"type": "MIT", "url": ...}` objects
    # and `licenses` arrays are common in older packages. The view has no licence then, so the
    # search summary says none rather than guess; the stored document keeps what was sent.
    licence = view.get("license", view.get("licence"))
    if licence is None:
        return
    problem = None
    if not isinstance(licence, str):
        problem = f"license should be a valid SPDX license expression, not {type(licence).__name__}"
    else:
        try:
            parse_expression(licence)
        except InvalidLicense as exc:
            problem = f"license should be a valid SPDX license expression: {exc}"
    if problem is not None:
        warn("license", "license_invalid", problem + "; not indexed")
        view["license"] = None


def _objectify(deps: Any, field: str, warn: _Warn) -> Any:
    # depObjectify: "a b@1" and ["a", "b@1"] become {"a": "", "b": "1"} (deprecatedArrayDependencies).
    if isinstance(deps, str):
        deps = _DEP_LIST_SPLIT.split(deps.strip())
    if not isinstance(deps, list):
        return deps
    warn(field, "dependencies_array", f"specifying {field} as array is deprecated; read as an object")
    out: dict[str, str] = {}
    for item in deps:
        if isinstance(item, str):
            parts = _DEP_SPLIT.split(item.strip())
            out[parts[0]] = "".join(parts[1:]).strip().removeprefix("@")
    return out


def _dependencies(view: dict[str, Any], field: str, warn: _Warn) -> None:
    # fixDependencies: a map that is not an object is deleted (nonObjectDependencies), an entry
    # whose spec is not a string is deleted (nonStringDependency). npm publishes git, URL and
    # file specs and names it has no rule for; they stay, with a warning, because a registry
    # (an edge, a mirror, our resolver) cannot serve them: resolve answers them with a 4xx.
    deps = view.get(field)
    if deps is None:
        return
    if field in _OBJECTIFIED:
        deps = _objectify(deps, field, warn)
    if not isinstance(deps, Mapping):
        warn(field, "dependencies_not_object", f"{field} field must be an object; ignored")
        del view[field]
        return
    kept: dict[str, str] = {}
    for name, spec in deps.items():
        where = _path(field, name)
        if not isinstance(spec, str):
            warn(where, "dependency_not_string", f"invalid dependency {name}: {spec!r} is not a string; ignored")
            continue
        problems = check_name(name, legacy=True)
        if problems:
            warn(where, "dependency_name_invalid", f"invalid dependency name {name!r}: " + "; ".join(problems))
        problem = check_dependency_spec(spec)
        if problem is not None:
            code = "dependency_not_registry" if "registry packages only" in problem else "dependency_spec_invalid"
            warn(where, code, problem)
        kept[name] = spec
    view[field] = kept


def _peer_meta(view: dict[str, Any], warn: _Warn) -> None:
    # arborist (node.js #loadDeps) reads peerDependenciesMeta[name]?.optional, truthy, and only
    # for names in peerDependencies: an entry for any other name declares nothing (debug and
    # follow-redirects mark packages they load if present). Both are warnings, not refusals.
    meta = view.get("peerDependenciesMeta")
    if meta is None:
        return
    if not isinstance(meta, Mapping):
        warn("peerDependenciesMeta", "peer_meta_not_object", "peerDependenciesMeta must be an object; ignored")
        del view["peerDependenciesMeta"]
        return
    declared = view.get("peerDependencies")
    peers: Mapping[str, Any] = declared if isinstance(declared, Mapping) else {}
    kept: dict[str, dict[str, bool]] = {}
    for name, entry in meta.items():
        where = _path("peerDependenciesMeta", name)
        if name not in peers:
            warn(where, "peer_meta_not_peer", f"{name!r} is not in peerDependencies: npm ignores this entry")
        optional = entry.get("optional", False) if isinstance(entry, Mapping) else False
        if not isinstance(entry, Mapping) or not isinstance(optional, bool):
            warn(where, "peer_meta_invalid", "expected {\"optional\": true|false}; read as npm reads it "
                 f"(optional is {js_truthy(optional)})")
        kept[name] = {"optional": js_truthy(optional)}
    view["peerDependenciesMeta"] = kept


def _main(view: dict[str, Any], warn: _Warn) -> None:
    # npm does not check `main` at all: Node reads a main that is not a string as absent, and
    # packages publish `"main": false` to say they have none (dunder-proto, math-intrinsics).
    main = view.get("main")
    if main is not None and not isinstance(main, str):
        warn("main", "main_not_string", f"main should be a path string, not {main!r}; read as no main")
        del view["main"]


def _path(field: str, key: str) -> str:
    # As the manifest's problems spell paths: `dependencies.x`, `dependencies["@a/b"]`.
    return f"{field}.{key}" if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_-]*", key) else f"{field}[{json.dumps(key)}]"
