"""npm package names: the rules of ``validate-npm-package-name`` for *new* packages.

npm splits its checks into errors (never valid) and warnings (valid only for packages
published before the rule existed). A registry that accepts new publishes must treat both
as problems, so :func:`check_name` reports the union, one message per broken rule, in the
order npm checks them. The rules, as in validate-npm-package-name 7:

* not empty; no leading ``.``, ``-`` or ``_``; no leading or trailing white space;
* not ``node_modules`` or ``favicon.ico`` (any case); not a Node core module name;
* at most 214 characters (counted as JavaScript does, in UTF-16 code units);
* no capital letters; none of ``~'!()*`` in the part after the last ``/``;
* only characters that ``encodeURIComponent`` leaves alone, except for the one ``@`` and
  ``/`` of the scoped form ``@scope/name`` (whose name part may not start with ``.``).

Names of packages that already exist (what a dependency names) are checked with
``legacy=True``: npm's errors only, as for its ``validForOldPackages``.
"""

from __future__ import annotations

import re

from eghact_common.errors import InvalidName

__all__ = ["check_name", "escape_name", "name_warnings", "split_scope", "tarball_filename", "validate_name"]

MAX_LENGTH = 214

# validate-npm-package-name 7 ships this list (Node's `module.builtinModules` plus the
# `node:`-only modules) rather than asking the running Node, so that the answer does not
# depend on which Node runs it. We do the same.
_CORE_MODULES = frozenset(
    """
    _http_agent _http_client _http_common _http_incoming _http_outgoing _http_server
    _stream_duplex _stream_passthrough _stream_readable _stream_transform _stream_wrap
    _stream_writable _tls_common _tls_wrap assert assert/strict async_hooks buffer
    child_process cluster console constants crypto dgram diagnostics_channel dns
    dns/promises domain events fs fs/promises http http2 https inspector
    inspector/promises module net os path path/posix path/win32 perf_hooks process
    punycode querystring readline readline/promises repl stream stream/consumers
    stream/promises stream/web string_decoder sys timers timers/promises tls
    trace_events tty url util util/types v8 vm wasi worker_threads zlib
    node:sea node:sqlite node:test node:test/reporters
    """.split()  # noqa: SIM905 -- a word table reads better than 72 quoted strings
)
_EXCLUDED = ("node_modules", "favicon.ico")

# Exactly the characters that JavaScript's encodeURIComponent does not escape.
_URL_SAFE = re.compile(r"[A-Za-z0-9\-_.!~*'()]*")
# npm's `^(?:@([^/]+?)[/])?([^/]+?)$`: an optional `@scope/` and a name without `/`.
_SCOPED = re.compile(r"(?:@([^/]+?)/)?([^/]+?)")
_SPECIAL = re.compile(r"[~'!()*]")
# What String.prototype.trim removes: WhiteSpace and LineTerminator of ECMA-262. It is
# not Python's str.isspace set (which lacks U+FEFF and has U+001C..U+001F).
_JS_WHITESPACE = "\t\n\v\f\r \u00a0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a"
_JS_WHITESPACE += "\u2028\u2029\u202f\u205f\u3000\ufeff"


def _js_length(text: str) -> int:
    """Length as JavaScript counts it: UTF-16 code units, so an emoji counts twice."""
    return len(text.encode("utf-16-le", "surrogatepass")) // 2


def _url_safe(text: str) -> bool:
    return _URL_SAFE.fullmatch(text) is not None


def check_name(name: object, *, legacy: bool = False) -> list[str]:
    """Every reason ``name`` cannot be the name of a new npm package; empty when it can.

    With ``legacy=True`` only npm's hard errors count, not the rules added later (capitals,
    core module names, length, ``~'!()*``): use it for names of packages that already
    exist, such as dependencies on ``JSONStream`` or on the ``events``/``buffer`` polyfills.
    """
    if not isinstance(name, str):
        return ["name must be a string"]
    problems: list[str] = []
    if not name:
        problems.append("name length must be greater than zero")
    if name.startswith("."):
        problems.append("name cannot start with a period")
    if name.startswith("-"):
        problems.append("name cannot start with a hyphen")
    if name.startswith("_"):
        problems.append("name cannot start with an underscore")
    if name.strip(_JS_WHITESPACE) != name:
        problems.append("name cannot contain leading or trailing spaces")
    lowered = name.lower()
    if lowered in _EXCLUDED:
        problems.append(f"{lowered} is not a valid package name")
    # npm's "warnings": allowed for old packages, refused for new ones.
    if not legacy:
        if lowered in _CORE_MODULES:
            problems.append(f"{name} is a core module name")
        if _js_length(name) > MAX_LENGTH:
            problems.append(f"name cannot contain more than {MAX_LENGTH} characters")
        if lowered != name:
            problems.append("name cannot contain capital letters")
        if _SPECIAL.search(name.split("/")[-1]):
            problems.append('name cannot contain special characters ("~\'!()*")')
    if not _url_safe(name):
        match = _SCOPED.fullmatch(name)
        scoped_ok = False
        if match:
            scope, bare = match.group(1), match.group(2)
            if bare.startswith(".") and "name cannot start with a period" not in problems:
                problems.append("name cannot start with a period")
            scoped_ok = scope is not None and _url_safe(scope) and _url_safe(bare)
        if not scoped_ok:
            problems.append("name can only contain URL-friendly characters")
    return problems


def name_warnings(name: str) -> list[str]:
    """The rules ``name`` breaks that npm added later (its "warnings"): a name that breaks only
    these is valid for old packages (``JSONStream``, ``events``), not for new ones."""
    old = check_name(name, legacy=True)
    return [problem for problem in check_name(name) if problem not in old]


def validate_name(name: object, *, legacy: bool = False) -> str:
    """``name`` itself when it is a valid new package name; else :class:`InvalidName` with every problem.

    ``legacy`` as for :func:`check_name`.
    """
    problems = check_name(name, legacy=legacy)
    if problems or not isinstance(name, str):
        raise InvalidName(
            f"invalid package name {name!r}: " + "; ".join(problems),
            detail={"name": name if isinstance(name, str) else repr(name), "problems": problems},
        )
    return name


def split_scope(name: str) -> tuple[str | None, str]:
    """``("@scope", "name")`` for ``@scope/name``, ``(None, name)`` for an unscoped name.

    The scope keeps its ``@``, as npm-package-arg's ``scope`` does. Only the shape is
    checked here (use :func:`validate_name` for the rules).
    """
    if not name.startswith("@"):
        return None, name
    scope, slash, bare = name.partition("/")
    if not slash or scope == "@" or not bare or "/" in bare:
        raise InvalidName(f"invalid scoped package name {name!r}: expected @scope/name", detail={"name": name})
    return scope, bare


def escape_name(name: str) -> str:
    """npm's ``escapedName``: the one ``/`` of a scoped name as ``%2f`` (``@scope%2fname``)."""
    return name.replace("/", "%2f")


def tarball_filename(name: str, version: str) -> str:
    """The file name npm gives a tarball: ``<unscoped-name>-<version>.tgz``."""
    _, bare = split_scope(name)
    return f"{bare}-{version}.tgz"
