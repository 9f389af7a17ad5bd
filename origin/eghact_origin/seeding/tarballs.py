"""The bytes of the seed universe: code-like text, README, types and styles, npm-style .tgz, and the
(optionally multi-process) loop that turns a plan's packages into ``SeedPackage`` values.

The generator must emit hundreds of megabytes of JavaScript-looking text in seconds, so nothing here draws
a random number per character or per token on the hot path. A pool of code blocks (functions, classes,
constant tables) is built once per process from a fixed seed; a file is then a random sequence of whole
blocks, which costs one RNG draw per ~500 bytes. The pool is large (a few MB), so gzip's 32 KiB window
rarely sees a block twice and the output compresses like real unminified JS (about 3-5x), not like a
repeated string (100x).

Every byte is a function of its inputs: tar headers carry a fixed mtime, uid/gid 0, no user names, and
gzip's header mtime is 0, so one (plugins, seed) pair always yields identical tarballs.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import functools
import gzip
import json
import multiprocessing
import random
import tarfile
from collections import deque
from collections.abc import Iterable, Iterator, Mapping

from .values import PlannedPackage, SeedPackage, SeedVersion

__all__ = ["SeedPackage", "SeedVersion", "build_packages", "build_tarball", "version_files"]

# npm's own fixed timestamp for packed entries (1985-10-26T08:15:00Z), so tarballs compare byte for byte.
TAR_MTIME = 499162500
# Level 4 compresses this text to within 3% of level 6 (about 3.2x) at 1.6x the speed; generation time is
# dominated by gzip, and the seed command has a two-minute budget for 10,000 plugins.
GZIP_LEVEL = 4
POOL_BLOCKS = 4096
_POOL_SEED = 0xE6AC7
_NUL = b"\0"
CHUNK_VERSIONS = 400  # work unit for the process pool: big enough to amortise pickling, small for memory


_WORDS = (
    "value", "options", "config", "state", "props", "context", "node", "element", "target", "source",
    "result", "entry", "item", "items", "list", "index", "key", "keys", "map", "cache", "buffer", "chunk",
    "stream", "request", "response", "handler", "callback", "listener", "event", "events", "payload",
    "token", "session", "user", "route", "path", "query", "params", "headers", "body", "status", "error",
    "reason", "message", "timeout", "retry", "delay", "limit", "offset", "count", "size", "width", "height",
    "color", "theme", "style", "rules", "plugin", "plugins", "module", "registry", "store", "queue",
    "stack", "frame", "layer", "view", "model", "schema", "field", "fields", "record", "records", "parser",
    "lexer", "token", "tree", "visitor", "scope", "binding", "ref", "refs", "child", "children", "parent",
    "root", "render", "mount", "patch", "update", "effect", "signal", "observer", "subscriber", "channel",
    "worker", "task", "job", "batch", "flush", "timer", "clock", "locale", "format", "filter", "reducer",
    "selector", "action", "dispatch", "middleware", "transform", "output", "input", "file", "files", "dir",
    "url", "host",
)
_VERBS = (
    "get", "set", "create", "build", "make", "parse", "read", "write", "load", "save", "resolve", "apply",
    "merge", "normalize", "validate", "compute", "format", "render", "mount", "update", "patch", "flush",
    "emit", "dispatch", "subscribe", "register", "handle", "process", "transform", "collect", "compile",
    "serialize", "encode", "decode", "clone", "compare", "ensure", "assert", "wrap", "unwrap",
)
_TYPES = ("string", "number", "object", "function", "boolean", "array")
_COMMENTS = (
    "keep the previous value so that listeners can compare",
    "fast path: nothing changed since the last render",
    "the caller may pass a plain object or a Map",
    "normalise trailing slashes before matching",
    "avoid quadratic behaviour on long inputs",
    "defer until the next microtask so batched updates coalesce",
    "older hosts do not implement this, fall back to a loop",
    "this mirrors the behaviour of the reference implementation",
    "guard against prototype pollution from untrusted input",
    "cache the compiled form, compiling is expensive",
)


def _ident(rng: random.Random) -> str:
    words = rng.sample(_WORDS, rng.choice((1, 1, 1, 1, 1, 2)))
    return words[0] + "".join(w.capitalize() for w in words[1:])


def _func_name(rng: random.Random) -> str:
    noun = _ident(rng)
    return rng.choice(_VERBS) + noun[0].upper() + noun[1:]


def _statement(rng: random.Random, indent: str) -> str:
    a, b, c = _ident(rng), _ident(rng), _ident(rng)
    form = rng.randrange(12)
    if form == 0:
        return f"{indent}const {a} = {b}.{_func_name(rng)}({c}, {rng.randrange(64)});"
    if form == 1:
        return f"{indent}if ({a} === undefined || {a} === null) {{\n{indent}  return {b};\n{indent}}}"
    if form == 2:
        return (f"{indent}for (let i = 0; i < {a}.length; i++) {{\n"
                f"{indent}  {b}[i] = {_func_name(rng)}({a}[i], {c});\n{indent}}}")
    if form == 3:
        return f"{indent}{a}.{b} = options.{b} ?? {rng.choice(('null', '0', 'false', '[]', '{}'))};"
    if form == 4:
        return (f"{indent}if (typeof {a} !== \"{rng.choice(_TYPES)}\") {{\n"
                f"{indent}  throw new TypeError(`{_func_name(rng)}: expected {a}, got ${{typeof {a}}}`);\n"
                f"{indent}}}")
    if form == 5:
        return f"{indent}// {rng.choice(_COMMENTS)}"
    if form == 6:
        return f"{indent}return {{ ...{a}, {b}: {c}, {_ident(rng)}: {rng.randrange(1000)} }};"
    if form == 7:
        return f"{indent}const {{ {a}, {b} }} = await {_func_name(rng)}({c});"
    if form == 8:
        return f"{indent}{a}.push(...{b}.filter((x) => x.{c} !== {rng.randrange(16)}));"
    if form == 9:
        return f"{indent}let {a} = {b} ? {b}.{c} : \"{rng.choice(_WORDS)}-{rng.choice(_WORDS)}\";"
    if form == 10:
        return f"{indent}this.{a} = new Map(Object.entries({b} || {{}}));"
    return f"{indent}{a} = {a} + {b}.length * {rng.randrange(2, 9)};"


def _block(rng: random.Random) -> str:
    kind = rng.randrange(10)
    if kind < 6:
        name = _func_name(rng)
        args = ", ".join(_ident(rng) for _ in range(rng.randrange(1, 4)))
        body = "\n".join(_statement(rng, "  ") for _ in range(rng.randrange(3, 14)))
        prefix = "export " if kind == 0 else ("async " if kind == 1 else "")
        return f"{prefix}function {name}({args}) {{\n{body}\n}}\n\n"
    if kind < 9:
        cls = _ident(rng)
        methods = []
        for _ in range(rng.randrange(1, 4)):
            stmts = "\n".join(_statement(rng, "    ") for _ in range(rng.randrange(2, 8)))
            methods.append(f"  {_func_name(rng)}({_ident(rng)}) {{\n{stmts}\n  }}")
        return f"class {cls[0].upper()}{cls[1:]} {{\n" + "\n\n".join(methods) + "\n}\n\n"
    const = _ident(rng).upper()
    rows = ",\n".join(f"  {_ident(rng)}: \"{rng.choice(_WORDS)}\"" for _ in range(rng.randrange(3, 10)))
    return f"const {const} = Object.freeze({{\n{rows}\n}});\n\n"


@functools.cache
def _pool() -> tuple[bytes, ...]:
    # Cached per process on purpose: it is a pure function of a constant seed, and rebuilding it for
    # every tarball would cost more than compressing the tarball.
    rng = random.Random(_POOL_SEED)
    return tuple(_block(rng).encode() for _ in range(POOL_BLOCKS))


@functools.cache
def _mean_block() -> int:
    pool = _pool()
    return sum(map(len, pool)) // len(pool)


def _code(rng: random.Random, size: int, header: str) -> bytes:
    pool = _pool()
    picks = rng.choices(range(len(pool)), k=max(1, round(size / _mean_block())))
    return header.encode() + b"".join([pool[i] for i in picks])


def _readme(manifest: Mapping[str, object]) -> bytes:
    name = manifest["name"]
    return (
        f"# {name}\n\n{manifest.get('description', '')}\n\n## Install\n\n```sh\nnpm install {name}\n```\n\n"
        f"## Usage\n\n```js\nimport plugin from \"{name}\";\n\nexport default {{\n  plugins: [plugin()],\n}};\n"
        f"```\n\n## Licence\n\n{manifest.get('license', 'UNLICENSED')}\n"
    ).encode()


def _types(rng: random.Random) -> bytes:
    lines = [f"export declare function {_func_name(rng)}({_ident(rng)}: unknown): Promise<void>;"
             for _ in range(rng.randrange(2, 8))]
    return ("\n".join(lines) + "\nexport default function plugin(options?: object): unknown;\n").encode()


def _style(rng: random.Random) -> bytes:
    rules = [f".eg-{rng.choice(_WORDS)}-{rng.choice(_WORDS)} {{ color: #{rng.getrandbits(24):06x}; "
             f"padding: {rng.randrange(0, 24)}px; }}" for _ in range(rng.randrange(4, 40))]
    return ("\n".join(rules) + "\n").encode()


def version_files(manifest: Mapping[str, object], *, size: int, content_seed: int,
                  readme: bool) -> dict[str, bytes]:
    """The files of one version's tarball (paths without the ``package/`` prefix).

    ``package.json`` is exactly ``manifest``; ``dist/index.js`` is about ``size`` bytes of code; the
    types and style files exist whenever ``eghact.exports`` names them, so the manifest never points at
    a missing file.
    """
    rng = random.Random(content_seed)
    header = f"/*! {manifest['name']} v{manifest['version']} | {manifest.get('license')} */\n\"use strict\";\n\n"
    files = {"package.json": (json.dumps(manifest, indent=2) + "\n").encode()}
    if readme:
        files["README.md"] = _readme(manifest)
    files["dist/index.js"] = _code(rng, size, header)
    eghact = manifest.get("eghact")
    exports = eghact.get("exports", {}) if isinstance(eghact, dict) else {}
    if "types" in exports:
        files[exports["types"]] = _types(rng)
    if "style" in exports:
        files[exports["style"]] = _style(rng)
    return files


def build_tarball(files: Mapping[str, bytes]) -> bytes:
    """An npm-style .tgz: every entry under ``package/``, regular files only, mode 0644, owner 0:0,
    a fixed mtime and a gzip header with mtime 0, in the order given. Same files -> same bytes (on one
    zlib build).

    ``eghact_origin.tarball.build_tarball`` makes the same kind of archive for publishing; this one exists
    for speed alone (gzip level 4, no 10 KiB record padding: about half the time per tarball), because
    building tens of thousands of tarballs is most of the seed command's budget.
    """
    # Headers come from tarfile, but the archive is laid out by hand: tarfile.open() pads to a 10 KiB
    # record, which doubles the bytes gzip must scan for a median tarball. Like node-tar, we end with
    # the two zero blocks only.
    parts: list[bytes] = []
    for path, data in files.items():
        info = tarfile.TarInfo(f"package/{path}")
        info.size = len(data)
        info.mode = 0o644
        info.mtime = TAR_MTIME
        info.uid = info.gid = 0
        info.uname = info.gname = ""
        parts.append(info.tobuf(tarfile.USTAR_FORMAT, "utf-8", "strict"))
        parts.append(data)
        parts.append(_NUL * (-len(data) % tarfile.BLOCKSIZE))
    parts.append(_NUL * (2 * tarfile.BLOCKSIZE))
    return gzip.compress(b"".join(parts), compresslevel=GZIP_LEVEL, mtime=0)


def _build_versions(package: PlannedPackage, start: int, stop: int) -> list[SeedVersion]:
    out = []
    for v in package.versions[start:stop]:
        manifest = package.manifest(v)
        files = version_files(manifest, size=v.size, content_seed=v.content_seed, readme=package.readme)
        out.append(SeedVersion(manifest, build_tarball(files), v.published, v.deprecated))
    return out


def _build(package: PlannedPackage) -> SeedPackage:
    return SeedPackage(package.name, tuple(_build_versions(package, 0, len(package.versions))),
                       dict(package.dist_tags))


# A unit of pool work: slices (package, first version, end version) covering about CHUNK_VERSIONS versions.
# Giants are cut into several units, so one 3,000-version package does not idle the other workers.
_Unit = tuple[tuple["PlannedPackage", int, int], ...]


def _build_unit(unit: _Unit) -> list[list[SeedVersion]]:
    return [_build_versions(package, start, stop) for package, start, stop in unit]


def _portable(unit: _Unit) -> _Unit:
    """The unit with each package cut down to its slice, so a giant is not pickled once per slice."""
    return tuple((dataclasses.replace(p, versions=p.versions[start:stop]), 0, stop - start)
                 for p, start, stop in unit)


def _units(packages: Iterable[PlannedPackage]) -> Iterator[_Unit]:
    unit: list[tuple[PlannedPackage, int, int]] = []
    room = CHUNK_VERSIONS
    for p in packages:
        start = 0
        while start < len(p.versions):
            stop = min(len(p.versions), start + room)
            unit.append((p, start, stop))
            room -= stop - start
            start = stop
            if room == 0:
                yield tuple(unit)
                unit, room = [], CHUNK_VERSIONS
    if unit:
        yield tuple(unit)


def build_packages(packages: Iterable[PlannedPackage], *, workers: int = 1) -> Iterator[SeedPackage]:
    """Build each planned package's tarballs, yielding packages in the order given.

    Memory stays bounded: one package at a time with ``workers <= 1``; otherwise at most ``3 * workers``
    units of ``CHUNK_VERSIONS`` versions are in flight (results are taken in order before more work is
    submitted), plus the package being assembled. Output does not depend on ``workers``: each tarball is a
    function of its plan entry alone. With ``workers > 1`` the pool uses "spawn" (the caller may be a
    threaded server, and forking a threaded process can deadlock), so a script calling this needs the usual
    ``if __name__ == "__main__":`` guard.
    """
    if workers <= 1:
        yield from map(_build, packages)
        return
    context = multiprocessing.get_context("spawn")
    with concurrent.futures.ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
        in_flight: deque[tuple[_Unit, concurrent.futures.Future[list[list[SeedVersion]]]]] = deque()
        assembling: list[SeedVersion] = []

        def drain_one() -> Iterator[SeedPackage]:
            unit, future = in_flight.popleft()
            for (package, _, stop), versions in zip(unit, future.result(), strict=True):
                assembling.extend(versions)
                if stop == len(package.versions):
                    yield SeedPackage(package.name, tuple(assembling), dict(package.dist_tags))
                    assembling.clear()

        try:
            for unit in _units(packages):
                in_flight.append((unit, pool.submit(_build_unit, _portable(unit))))
                if len(in_flight) >= 3 * workers:
                    yield from drain_one()
            while in_flight:
                yield from drain_one()
        finally:
            for _, future in in_flight:
                future.cancel()
