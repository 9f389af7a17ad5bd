"""A deterministic, realistic universe of Eghact plugins for seeding an origin.

``plan_universe(plugins, seed)`` decides everything cheaply and without bytes: names, kinds, licences,
semver histories with publish times, dependencies, cycles, advisories, deprecations, dist-tags.
``iter_packages(plan)`` then builds the tarballs lazily, package by package, optionally in a process pool.
Same (plugins, seed) -> byte-identical output: every stage draws from its own ``random.Random`` seeded
with ``f"{seed}/{stage}"`` (string seeds hash with SHA-512, so PYTHONHASHSEED cannot leak in), iterates in
creation order, and formats times from integer seconds.

The shape imitates npm:

- popularity is Zipf-like and dependency targets are chosen by preferential attachment (an urn holding
  each package ``fitness`` times plus once per dependent), so a few packages collect most dependents;
- version counts follow a Pareto law (median 2, ~90% at most 10) plus a few giants with thousands of
  versions, whose packuments are megabytes;
- every dependency points to a package created earlier, and its range is built from a release of the
  target published before the depending version, so the graph is acyclic and every range satisfiable --
  except for a few deliberate rings (``UniversePlan.cycles``) whose back-edges appear only in versions
  published after every ring member exists.
"""

from __future__ import annotations

import bisect
import itertools
import math
import random
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field

from .tarballs import build_packages
from .values import PlannedPackage, PlannedVersion, SeedAdvisory, SeedPackage, SeedVersion, UniversePlan

__all__ = [
    "PlannedPackage",
    "PlannedVersion",
    "SeedAdvisory",
    "SeedPackage",
    "SeedVersion",
    "UniversePlan",
    "advisories",
    "iter_packages",
    "plan_universe",
]

EPOCH = 1514764800  # 2018-01-01T00:00:00Z: the first package is created then
SPAN = 6 * 365 * 86400  # histories end around the start of 2024
PLUGIN_KINDS = ("component", "transformer", "middleware", "theme")
NON_OSI = frozenset({"SSPL-1.0", "BUSL-1.1", "CC-BY-NC-4.0"})

# ---- policy as data ----------------------------------------------------------------------------------
_KIND_SHARES = (("library", 25), ("component", 30), ("transformer", 16), ("middleware", 15), ("theme", 14))
_LICENCE_SHARES = (
    ("MIT", 44), ("ISC", 12), ("Apache-2.0", 13), ("BSD-3-Clause", 8), ("MIT OR Apache-2.0", 6),
    ("BSD-2-Clause", 3), ("GPL-3.0-only", 4), ("MPL-2.0", 2), ("LGPL-3.0-or-later", 1),
    ("SSPL-1.0", 2), ("BUSL-1.1", 3), ("CC-BY-NC-4.0", 2),
)
_CATEGORIES = {  # category -> name stems
    "charts": "chart sparkline gauge heatmap treemap plot",
    "forms": "form datepicker select checkbox slider autocomplete",
    "layout": "grid masonry splitpane drawer tabs accordion",
    "media": "carousel lightbox video-player gallery avatar audio",
    "navigation": "navbar breadcrumbs pagination menu sidebar stepper",
    "data-display": "table datagrid tree timeline badge tooltip",
    "editors": "editor rich-text code-editor markdown-editor canvas whiteboard",
    "maps": "map geo tiles marker leaflet globe",
    "content": "markdown mdx yaml frontmatter toml asciidoc",
    "styles": "sass postcss less stylus tailwind css-modules",
    "images": "image svg webp sprite imagemin avif",
    "i18n": "i18n intl messages locale translations pluralize",
    "build": "minify bundle env graphql wasm inline",
    "security": "csrf helmet cors csp sanitize ratelimit",
    "auth": "auth jwt oauth session passkey saml",
    "performance": "cache compression etag preload prefetch brotli",
    "observability": "logger metrics tracing sentry audit profiler",
    "routing": "router redirect rewrite proxy i18n-routing static",
    "themes": "nord dracula solarized material ocean forest sunset midnight pastel mono retro aurora",
    "utilities": "utils fp date color merge emitter signals store query schema validator fetch urlpattern uuid "
                 "debounce deep-equal immutable observable format parse streams async queue",
}
_KIND_CATEGORIES = {
    "component": ("charts", "forms", "layout", "media", "navigation", "data-display", "editors", "maps"),
    "transformer": ("content", "styles", "images", "i18n", "build"),
    "middleware": ("security", "auth", "performance", "observability", "routing"),
    "theme": ("themes",),
    "library": ("utilities",),
}
_KIND_WORD = {"component": "plugin", "transformer": "transform", "middleware": "middleware", "theme": "theme"}
_ADJECTIVES = (
    "fast", "tiny", "simple", "smart", "modern", "lazy", "reactive", "accessible", "fluid", "super",
    "micro", "nano", "hyper", "easy", "quick", "zen", "neat", "bright", "swift", "solid", "light", "pure",
    "open", "clever", "vivid", "crisp", "sleek", "robust", "native",
)
_SUFFIXES = ("kit", "js", "lite", "plus", "pro", "next", "x", "ui", "core", "tools", "utils", "helper",)
_SCOPES = (
    "acme", "contoso", "initech", "globex", "umbrella", "hooli", "wonka", "stark", "tyrell", "cyberdyne",
    "soylent",
)
_FIRST = (
    "Jane", "John", "Ada", "Alan", "Grace", "Linus", "Margaret", "Dennis", "Barbara", "Ken", "Radia",
    "Guido", "Anders", "Yukihiro", "Sophie", "Tim", "Brendan", "Hedy", "Katherine", "Edsger", "Frances",
    "Niklaus", "Lea", "Ryan",
)
_LAST = (
    "Doe", "Smith", "Lovelace", "Turing", "Hopper", "Torvalds", "Hamilton", "Ritchie", "Liskov", "Thompson",
    "Perlman", "Rossum", "Hejlsberg", "Matsumoto", "Wilson", "Berners", "Eich", "Lamarr", "Johnson",
    "Dijkstra", "Allen", "Wirth", "Verou", "Dahl",
)
_HOSTS = ("*.api.example.com", "api.example.org", "*.tiles.example.net", "fonts.example.com")
# (capability, P(required), P(optional)); "network:fetch:HOST" is given one host per package.
_CAPABILITIES = {
    "component": (("dom:read", .75, .1), ("dom:write", .9, .05), ("network:fetch", .15, .2),
                  ("network:fetch:HOST", .1, .1), ("api:router", .15, .1), ("api:storage", .1, .15),
                  ("api:i18n", .05, .15), ("gpu:compute", .04, .08)),
    "transformer": (("filesystem:read", .95, 0), ("filesystem:write", .6, .15), ("process:spawn", .2, .1),
                    ("network:fetch", .05, .15), ("gpu:compute", .03, .05), ("api:i18n", .05, .05)),
    "middleware": (("network:fetch", .35, .15), ("network:fetch:HOST", .3, .1), ("api:session", .35, .1),
                   ("api:auth", .3, .1), ("api:router", .4, .1), ("filesystem:read", .15, .1),
                   ("filesystem:write", .05, .1), ("api:analytics", .05, .15), ("process:spawn", .03, .02)),
    "theme": (("dom:write", .95, 0), ("dom:read", .3, .2), ("api:theme", .3, .3),
              ("network:fetch:HOST", .05, .15)),
}
# (first fraction of SPAN, last fraction, eghact.version ranges published in that era)
_FRAMEWORK_ERAS = ((0.0, 0.4, ("^1.0.0", "^1.2.0", ">=1.0.0 <2.0.0")),
                   (0.3, 0.75, ("^2.0.0", "^2.0.0", ">=1.4.0 <3.0.0")),
                   (0.6, 0.9, (">=2.1.0 <4.0.0", "^2.3.0")),
                   (0.8, 9.9, ("^3.0.0", "^3.0.0", ">=2.1.0 <4.0.0")))
_RANGE_FORMS = (("caret", 55), ("tilde", 15), ("x", 10), ("exact", 12), ("gte-lt", 8))
# How likely a dependency's range is rewritten against the target's newest release, by kind of bump.
_REFRESH = {"major": .7, "minor": .3, "pre": .1, "patch": .05, "backport": .02}
_SEVERITIES = (("low", 20, 2.0, 3.9), ("moderate", 40, 4.0, 6.9), ("high", 30, 7.0, 8.9),
               ("critical", 10, 9.0, 10.0))
_WEAKNESSES = (("CWE-1321", "Prototype pollution"), ("CWE-1333", "Regular expression denial of service"),
               ("CWE-79", "Cross-site scripting"), ("CWE-22", "Path traversal"),
               ("CWE-918", "Server-side request forgery"), ("CWE-78", "OS command injection"),
               ("CWE-295", "Improper certificate validation"), ("CWE-400", "Uncontrolled resource consumption"),
               ("CWE-601", "Open redirect"), ("CWE-502", "Deserialisation of untrusted data"))


# ---- planning ----------------------------------------------------------------------------------------
@dataclass(slots=True, eq=False)
class _Draft:
    """Mutable working state for one package while the plan is being decided, stage by stage."""

    index: int  # creation order
    kind: str
    licence: str
    name: str = ""
    category: str = ""
    stem: str = ""  # the word its name and description are built around
    host: str = ""  # the host in its network:fetch:HOST capability, if it gets one
    rank: int = 0  # popularity rank, 0 = most popular
    fitness: int = 1  # tickets in the attachment urn before any dependent
    count: int = 1  # number of versions
    created: int = 0  # epoch seconds of the first version
    versions: list[tuple] = field(default_factory=list)  # (M, m, p, (tag, n) | None), publish order
    vstr: list[str] = field(default_factory=list)
    bumps: list[str] = field(default_factory=list)  # first|major|minor|patch|pre|backport per version
    times: list[int] = field(default_factory=list)
    rel_pos: list[int] = field(default_factory=list)  # indices of the releases (non-prereleases)
    rel_times: list[int] = field(default_factory=list)
    rel_best: list[int] = field(default_factory=list)  # per release: index of the highest release so far
    traits: list[tuple] = field(default_factory=list)  # per version: (licence, eghact.version, caps)
    deps: list[list[tuple[str, str, str]]] = field(default_factory=list)  # per version: (role, name, range)
    deprecated: dict[int, str] = field(default_factory=dict)  # version index -> message

    def latest(self) -> int:
        return self.rel_best[-1]

    def release_before(self, t: int) -> int:
        """Position in the release lists (``rel_*``) of the last release published before t, or -1."""
        return bisect.bisect_left(self.rel_times, t) - 1


def _quota(rng: random.Random, table: tuple[tuple[str, int], ...], n: int) -> list[str]:
    """``n`` labels in the table's proportions, every label present once n allows, shuffled."""
    total = sum(w for _, w in table)
    counts = {label: n * w // total for label, w in table}
    by_remainder = sorted(table, key=lambda lw: -(n * lw[1] % total))
    for label, _ in by_remainder[: n - sum(counts.values())]:
        counts[label] += 1
    for label, _ in table:
        if n >= len(table) and counts[label] == 0:
            counts[max(counts, key=counts.__getitem__)] -= 1
            counts[label] = 1
    out = [label for label, _ in table for _ in range(counts[label])]
    rng.shuffle(out)
    return out


def _weighted(rng: random.Random, table: tuple[tuple, ...]) -> tuple:
    return rng.choices(table, weights=[row[1] for row in table])[0]


def _iso(ts: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime(ts))


def _vkey(v: tuple) -> tuple:
    return (v[0], v[1], v[2], 1, ()) if v[3] is None else (v[0], v[1], v[2], 0, v[3])


def _vstr(v: tuple) -> str:
    return f"{v[0]}.{v[1]}.{v[2]}" if v[3] is None else f"{v[0]}.{v[1]}.{v[2]}-{v[3][0]}.{v[3][1]}"


def _name(rng: random.Random, kind: str, stem: str) -> str:
    adj, suffix = rng.choice(_ADJECTIVES), rng.choice(_SUFFIXES)
    if rng.random() < 0.3:
        if kind != "library" and rng.random() < 0.4:
            return f"@eghact/{_KIND_WORD[kind]}-{stem}"
        return f"@{rng.choice(_SCOPES)}/" + rng.choice((stem, f"{adj}-{stem}", f"{stem}-{suffix}"))
    forms = [f"{adj}-{stem}", f"{stem}-{suffix}", f"{adj}-{stem}-{suffix}"]
    if kind == "library":
        forms += [stem, stem, f"{stem}-{rng.choice(_CATEGORIES['utilities'].split())}"]
    else:
        forms += [f"eghact-{stem}", f"eghact-{_KIND_WORD[kind]}-{stem}"]
    return rng.choice(forms)


def _draft_packages(n: int, seed: int) -> list[_Draft]:
    rng = random.Random(f"{seed}/packages")
    kinds, licences = _quota(rng, _KIND_SHARES, n), _quota(rng, _LICENCE_SHARES, n)
    drafts = [_Draft(i, kinds[i], licences[i]) for i in range(n)]
    taken: set[str] = set()
    for d in drafts:
        d.category = rng.choice(_KIND_CATEGORIES[d.kind])
        d.stem = rng.choice(_CATEGORIES[d.category].split())
        for _ in range(6):
            d.name = _name(rng, d.kind, d.stem)
            if d.name not in taken:
                break
        else:
            d.name = next(f"{d.name}-{k}" for k in itertools.count(2) if f"{d.name}-{k}" not in taken)
        taken.add(d.name)
        d.host = rng.choice(_HOSTS)
    # Zipf-like fitness; older packages tend to rank higher, as on npm.
    order = sorted(range(n), key=lambda i: 1.5 * i / n + rng.random())
    for rank, i in enumerate(order):
        drafts[i].rank, drafts[i].fitness = rank, max(1, int(60 / (rank + 1) ** 0.9))
    # Version counts: Pareto body, a few giants; bigger counts go (noisily) to more popular packages.
    giants = max(1, round(n / 2500))
    giant_min = min(5000, max(200, 2000 * n // 10000)) if n >= 200 else max(10, n)
    body_cap = max(2, int(giant_min * 0.75))
    counts = sorted((min(body_cap, int(1.6 * (1.0 - rng.random()) ** (-1 / 1.4))) for _ in range(n - giants)),
                    reverse=True)
    by_pull = sorted(order[giants:], key=lambda i: (drafts[i].rank + 1) * rng.lognormvariate(0, 1.5))
    for i in order[:giants]:
        drafts[i].count = rng.randint(giant_min, giant_min * 8 // 5)
    for i, c in zip(by_pull, counts, strict=True):
        drafts[i].count = max(1, c)
    gaps = list(itertools.accumulate(rng.expovariate(1.0) for _ in range(n)))
    for d, g in zip(drafts, gaps, strict=True):
        d.created = EPOCH + int(0.9 * SPAN * g / gaps[-1]) + d.index
    return drafts


def _prerelease_series(rng: random.Random, target: tuple[int, int, int], major: bool) -> list[tuple]:
    stages = ((("alpha", rng.choice((0, 0, 1, 2, 3))), ("beta", rng.choice((0, 1, 1, 2))),
               ("rc", rng.choice((1, 1, 2)))) if major else
              (("beta", rng.choice((0, 1))), ("rc", rng.choice((1, 1, 2)))))
    return [(*target, (tag, k)) for tag, count in stages for k in range(1, count + 1)]


def _history(rng: random.Random, n: int, force_next: bool) -> tuple[list[tuple], list[str]]:
    """``n`` versions (M, m, p, pre|None) in publish order, and what kind of bump each one was."""
    start = rng.choice(((1, 0, 0), (1, 0, 0), (0, 1, 0), (0, 1, 0), (0, 0, 1)))
    versions, bumps = [(*start, None)], ["first"]
    lines = {start[0]: start[1:]}  # major -> highest (minor, patch) released
    # Targets already aimed at, with or without a prerelease series. The "next" tail series is
    # not followed by its release, so when the history goes on, a later major aims at the same
    # target, and its series would publish the same prereleases again (seed 7 at 10,000 plugins
    # did): such a target is released without a second series.
    prereleased: set[tuple[int, int, int]] = set()
    pending: deque[tuple[tuple, str]] = deque()
    tail = rng.randint(1, 3) if force_next else 0
    # Breaking changes stay rare however long the history: a package with thousands of versions has a
    # handful of majors and many patches (like auto-published SDKs), not hundreds of majors.
    p_major = min(0.06, 6 / n)
    p_minor = p_major + min(0.24, 100 / n)
    while len(versions) < n:
        if not pending:
            top = max(lines)
            minor, patch = lines[top]
            r = rng.random()
            if tail and len(versions) >= n - tail:
                pending.extend((v, "pre") for v in _prerelease_series(rng, (top + 1, 0, 0), True))
                prereleased.add((top + 1, 0, 0))
                tail = 0
            elif r < 0.03 and len(lines) > 1:  # a fix backported to the previous major line
                old = sorted(lines)[-2]
                pending.append(((old, lines[old][0], lines[old][1] + 1, None), "backport"))
            elif r < 0.03 + p_major:
                target = (top + 1, 0, 0)
                series = _prerelease_series(rng, target, True) if rng.random() < 0.5 else []
                series = [] if target in prereleased else series   # drawn anyway: other seeds keep their plans
                prereleased.add(target)
                pending.extend([*((v, "pre") for v in series), ((*target, None), "major")])
            elif r < 0.03 + p_minor:
                target = (top, minor + 1, 0)
                series = _prerelease_series(rng, target, False) if rng.random() < 0.12 else []
                series = [] if target in prereleased else series
                prereleased.add(target)
                pending.extend([*((v, "pre") for v in series), ((*target, None), "minor")])
            else:
                pending.append(((top, minor, patch + 1, None), "patch"))
            continue
        v, bump = pending.popleft()
        versions.append(v)
        bumps.append(bump)
        if v[3] is None:
            lines[v[0]] = max(lines.get(v[0], (-1, -1)), (v[1], v[2]))
    return versions, bumps


def _caps_for(rng: random.Random, d: _Draft) -> tuple[tuple[str, ...], tuple[str, ...]]:
    required: list[str] = []
    optional: list[str] = []
    for cap, p_req, p_opt in _CAPABILITIES[d.kind]:
        cap = cap.replace("HOST", d.host)
        r = rng.random()
        (required if r < p_req else optional if r < p_req + p_opt else []).append(cap)
    if not required:
        required.append(_CAPABILITIES[d.kind][0][0].replace("HOST", d.host))
        optional = [c for c in optional if c not in required]
    return tuple(sorted(required)), tuple(sorted(optional))


def _framework(rng: random.Random, t: int) -> str:
    f = (t - EPOCH) / SPAN
    return rng.choice([r for lo, hi, ranges in _FRAMEWORK_ERAS if lo <= f < hi for r in ranges])


def _draft_histories(drafts: list[_Draft], seed: int) -> None:
    rng = random.Random(f"{seed}/histories")
    end = EPOCH + SPAN
    for d in drafts:
        d.versions, d.bumps = _history(rng, d.count, d.count >= 3 and rng.random() < 0.06)
        d.vstr = [_vstr(v) for v in d.versions]
        active_until = end if d.count > 100 or rng.random() < 0.5 else d.created + int(
            (end - d.created) * rng.uniform(0.15, 1.0))
        gaps = list(itertools.accumulate(rng.expovariate(1.0) for _ in range(d.count - 1)))
        scale = (active_until - d.created) / gaps[-1] if gaps else 0.0
        # +60 s per step keeps times strictly increasing even for giants with thousands of versions.
        d.times = [d.created] + [d.created + int(g * scale) + 60 * (k + 1) for k, g in enumerate(gaps)]
        d.rel_pos = [k for k, v in enumerate(d.versions) if v[3] is None]
        d.rel_times = [d.times[k] for k in d.rel_pos]
        d.rel_best, best = [], d.rel_pos[0]
        for k in d.rel_pos:
            best = k if _vkey(d.versions[k]) > _vkey(d.versions[best]) else best
            d.rel_best.append(best)
        # Capabilities may grow at a major (the escalation a capability policy must catch); a few
        # packages relicense to a non-OSI licence at a major, as some well-known projects did.
        caps = _caps_for(rng, d) if d.kind != "library" else ((), ())
        licence, relicense = d.licence, d.licence not in NON_OSI and rng.random() < 0.03
        framework = None
        for k, bump in enumerate(d.bumps):
            if bump == "major" and d.kind != "library" and rng.random() < 0.2:
                spare = [c.replace("HOST", d.host) for c, _, _ in _CAPABILITIES[d.kind]
                         if c.replace("HOST", d.host) not in caps[0]]
                if spare:
                    new = rng.choice(spare)
                    caps = (tuple(sorted((*caps[0], new))), tuple(c for c in caps[1] if c != new))
            if bump == "major" and relicense:
                licence, relicense = rng.choice(("BUSL-1.1", "SSPL-1.0")), False
            if d.kind != "library" and (framework is None or (bump in ("major", "minor") and rng.random() < .5)):
                framework = _framework(rng, d.times[k])
            d.traits.append((licence, framework, caps))


def _range(rng: random.Random, form: str, base: tuple) -> str:
    major, minor, patch = base[:3]
    if form == "caret":
        return f"^{major}.{minor}.{patch}"
    if form == "tilde":
        return f"~{major}.{minor}.{patch}"
    if form == "x":
        return f"{major}.x" if rng.random() < 0.5 else f"{major}.{minor}.x"
    if form == "exact":
        return f"{major}.{minor}.{patch}"
    return f">={major}.{minor}.{patch} <{major + rng.choice((1, 1, 2))}.0.0"


def _range_at(rng: random.Random, form: str, target: _Draft, t: int) -> str:
    j = target.release_before(t)
    if j < 0:
        raise ValueError(f"{target.name} has no release before {_iso(t)}")  # a planning bug, not input
    pos = target.rel_pos[rng.randrange(j + 1)] if rng.random() < 0.15 else target.rel_best[j]
    return _range(rng, form, target.versions[pos])


def _draft_dependencies(drafts: list[_Draft], seed: int) -> list[int]:
    """Per-version dependency lists; returns the final attachment urn (popularity-weighted indices)."""
    rng = random.Random(f"{seed}/dependencies")
    urn: list[int] = []
    for d in drafts:
        n_deps = 0
        if d.index and rng.random() >= 0.22:
            mu = 0.3 if d.kind == "library" else 0.8
            n_deps = min(d.index, 24, 1 + int(rng.lognormvariate(mu, 0.75)))
        targets: list[int] = []
        for _ in range(4 * n_deps):
            if len(targets) == n_deps:
                break
            pick = urn[rng.randrange(len(urn))]
            if pick not in targets:
                targets.append(pick)
        favourite = _weighted(rng, _RANGE_FORMS)[0]
        plans = []  # (role, target, range form, added at version k, removed at k or None, optional peer)
        for ti in targets:
            r = rng.random()
            role = ("optionalDependencies" if r < 0.06 else
                    "peerDependencies" if r < 0.16 and d.kind != "library" else "dependencies")
            form = favourite if rng.random() < 0.7 else _weighted(rng, _RANGE_FORMS)[0]
            added = 0 if d.count == 1 or rng.random() < 0.65 else rng.randrange(d.count)
            removed = rng.randrange(added + 1, d.count) if added + 1 < d.count and rng.random() < .05 else None
            plans.append((role, drafts[ti], form, added, removed, role == "peerDependencies" and rng.random() < .35))
        current: dict[str, str] = {}
        for k, bump in enumerate(d.bumps):
            entries = []
            for role, target, form, added, removed, optional_peer in plans:
                if k < added or (removed is not None and k >= removed):
                    continue
                if target.name not in current or rng.random() < _REFRESH.get(bump, 0):
                    current[target.name] = _range_at(rng, form, target, d.times[k])
                entries.append((role + ("?" if optional_peer else ""), target.name, current[target.name]))
            d.deps.append(entries)
        urn.extend(targets)  # preferential attachment: every dependent makes a package likelier to be picked
        urn.extend([d.index] * d.fitness)
    return urn


def _draft_cycles(drafts: list[_Draft], seed: int) -> list[tuple[str, ...]]:
    """Close a few rings with back-edges, only in versions published after every member exists, and with
    ranges that admit each target's latest release, so resolving the latest versions meets the ring."""
    n = len(drafts)
    wanted = max(1, round(n / 2500)) if n >= 20 else 0
    rng = random.Random(f"{seed}/cycles")
    late = sorted((d for d in drafts if d.count >= 2), key=lambda d: -d.times[d.latest()])[: max(8, n // 5)]
    used: set[int] = set()
    rings: list[tuple[str, ...]] = []
    for _ in range(200 * wanted):
        if len(rings) == wanted:
            break
        size = rng.choice((2, 3, 3, 4))
        pool = [d for d in late if d.index not in used]
        if len(pool) < size:
            break
        members = sorted(rng.sample(pool, size), key=lambda d: d.index)
        since = max(d.created for d in members)
        if any(d.times[d.latest()] <= since for d in members):
            continue
        # Member j depends on member j-1; the oldest depends on the newest (the back-edge).
        for j, d in enumerate(members):
            target = members[j - 1]
            top = target.versions[target.latest()]
            for k, t in enumerate(d.times):
                if t <= since:
                    continue
                base = target.versions[target.rel_best[target.release_before(t)]]
                caret_admits_top = base[0] == top[0] and (
                    base[0] > 0 or (base[1] == top[1] and (base[1] > 0 or base[2] == top[2])))
                spec = f"^{_vstr(base)}" if caret_admits_top else f">={_vstr(base)} <{top[0] + 1}.0.0"
                d.deps[k] = [e for e in d.deps[k] if e[1] != target.name] + [("dependencies", target.name, spec)]
        used.update(d.index for d in members)
        rings.append(tuple(d.name for d in reversed(members)))
    return rings


def _draft_advisories(drafts: list[_Draft], urn: list[int], seed: int) -> list[SeedAdvisory]:
    """About one package in 25 gets an advisory, popular ones likelier (they draw more scrutiny)."""
    rng = random.Random(f"{seed}/advisories")
    found: list[tuple[int, str, _Draft, SeedAdvisory, list[int], str | None]] = []
    per_package: dict[int, int] = {}
    wanted = max(1, len(drafts) // 25) if len(drafts) >= 20 and urn else 0
    for _ in range(10 * wanted):
        if len(found) == wanted:
            break
        d = drafts[urn[rng.randrange(len(urn))]]
        rels = sorted(d.rel_pos, key=lambda k: _vkey(d.versions[k]))
        if len(rels) < 3 or per_package.get(d.index, 0) >= 2:
            continue
        per_package[d.index] = per_package.get(d.index, 0) + 1
        if rng.random() < 0.1:  # not fixed yet
            lo = rng.randrange(len(rels) - 3, len(rels))
            vulnerable, spec, fix = rels[lo:], f">={d.vstr[rels[lo]]}", None
            disclosed = d.times[-1]
        else:
            f = rng.randrange(1, len(rels))
            fix = d.vstr[rels[f]]
            lo = 0 if rng.random() < 0.6 else rng.randrange(f)
            vulnerable = rels[lo:f]
            spec = f"<{fix}" if lo == 0 else f">={d.vstr[rels[lo]]} <{fix}"
            disclosed = d.times[rels[f]]
        severity, _, low, high = _weighted(rng, _SEVERITIES)
        cwe, what = rng.choice(_WEAKNESSES)
        cwes = (cwe, "CWE-20") if rng.random() < 0.2 else (cwe,)
        adv = SeedAdvisory(d.name, spec, severity, f"{what} in {d.name}", "", cwes,
                           round(rng.uniform(low, high), 1))
        found.append((disclosed, d.name, d, adv, vulnerable, fix))
    out: list[SeedAdvisory] = []
    serial: dict[str, int] = {}
    found.sort(key=lambda row: (row[0], row[1], row[3].vulnerable_versions))
    for disclosed, _, d, adv, vulnerable, fix in found:
        year = _iso(disclosed)[:4]
        serial[year] = serial.get(year, 0) + 1
        ident = f"EGH-{year}-{serial[year]:04d}"
        out.append(SeedAdvisory(adv.name, adv.vulnerable_versions, adv.severity, adv.title,
                                f"https://advisories.eghact.dev/{ident}", adv.cwe, adv.cvss))
        if adv.severity == "critical" and fix is not None:
            for k in vulnerable:
                d.deprecated.setdefault(k, f"Critical security issue ({ident}); upgrade to {fix} or later")
    return out


def _draft_deprecations(drafts: list[_Draft], seed: int) -> None:
    rng = random.Random(f"{seed}/deprecations")
    n = len(drafts)
    for d in drafts:
        majors = sorted({d.versions[k][0] for k in d.rel_pos})
        if len(majors) >= 3 and rng.random() < 0.25:
            note = f"{d.name}@{majors[0]}.x is no longer supported; upgrade to {d.vstr[d.latest()]}"
            for k in d.rel_pos:
                if d.versions[k][0] == majors[0]:
                    d.deprecated.setdefault(k, note)
        for k in range(len(d.versions)):
            if k != d.latest() and rng.random() < 0.008:
                d.deprecated.setdefault(k, "This version was published by mistake and is broken; "
                                           "use a later version")
    ordinary = [d for d in drafts if d.count <= 100]
    abandoned = rng.sample(ordinary, min(len(ordinary), max(1, round(n * 0.015)))) if n >= 20 else []
    for d in abandoned:
        heirs = [e for e in drafts[d.index + 1:] if e.kind == d.kind]
        note = (f"{d.name} is no longer maintained; use {rng.choice(heirs).name} instead" if heirs
                else f"{d.name} is no longer maintained")
        d.deprecated = dict.fromkeys(range(len(d.versions)), note)


def _finish(d: _Draft, rng: random.Random, dependents: int) -> PlannedPackage:
    adj = rng.choice(_ADJECTIVES)
    description = {"library": f"{adj.capitalize()} {d.stem} utilities for JavaScript",
                   "component": f"A {adj} {d.stem} component for Eghact apps",
                   "transformer": f"Eghact transformer for {d.stem}: {adj} and cached",
                   "middleware": f"{d.stem.capitalize()} middleware for the Eghact server, {adj} by default",
                   "theme": f"The {d.stem} theme for Eghact, {adj} and accessible"}[d.kind]
    scope = d.name[1:].split("/")[0] if d.name.startswith("@") else None
    if rng.random() < 0.25:
        author = (f"{scope.capitalize()} Open Source <oss@{scope}.example.com>" if scope
                  else "Eghact Community <community@example.org>")
    else:
        first, last = rng.choice(_FIRST), rng.choice(_LAST)
        author = f"{first} {last} <{first.lower()}.{last.lower()}@example.com>"
    plugin_words = ("eghact", _KIND_WORD[d.kind]) if d.kind != "library" else ()
    keywords = tuple(dict.fromkeys((d.stem, d.category, *plugin_words)))
    exports = [("main", "dist/index.js")]
    if d.kind != "library" and rng.random() < {"theme": .2}.get(d.kind, .7):
        exports.append(("types", "dist/index.d.ts"))
    if rng.random() < {"theme": .9, "component": .4}.get(d.kind, 0):
        exports.append(("style", "dist/style.css"))
    browsers = tuple(f"{b} >= {v}" for b, v in (("chrome", rng.choice((90, 100, 110))),
                                                ("firefox", rng.choice((90, 100, 115))),
                                                ("safari", rng.choice((14, 15, 16)))) if rng.random() < 0.9)
    base = min(512 * 1024, max(600, rng.lognormvariate(math.log(8192), 1.0)))
    if d.count > 100:
        base = min(base, 24 * 1024)  # a giant with 500 KiB tarballs would be gigabytes on its own
    latest = d.latest()
    tags = [("latest", d.vstr[latest])]
    top_pre = max((k for k, v in enumerate(d.versions) if v[3] is not None),
                  key=lambda k: _vkey(d.versions[k]), default=None)
    if top_pre is not None and _vkey(d.versions[top_pre]) > _vkey(d.versions[latest]):
        tags.append(("next", d.vstr[top_pre]))
    versions = []
    for k, (licence, framework, caps) in enumerate(d.traits):
        roles: dict[str, list[tuple[str, str]]] = {"dependencies": [], "optionalDependencies": [],
                                                   "peerDependencies": [], "peerDependencies?": []}
        for role, name, spec in d.deps[k]:
            roles[role].append((name, spec))
        peers = sorted(roles["peerDependencies"] + roles["peerDependencies?"])
        versions.append(PlannedVersion(
            d.vstr[k], _iso(d.times[k]), d.deprecated.get(k), licence, framework, caps[0], caps[1],
            tuple(sorted(roles["dependencies"])), tuple(sorted(roles["optionalDependencies"])), tuple(peers),
            tuple(sorted(name for name, _ in roles["peerDependencies?"])),
            int(min(512 * 1024, base * rng.lognormvariate(0, 0.1))), rng.getrandbits(63)))
    downloads = 1 + int(20 * d.fitness * (1 + dependents) ** 1.2 * rng.lognormvariate(0, 0.6))
    return PlannedPackage(d.name, d.kind, d.category, description, author, keywords, tuple(exports), browsers,
                          rng.choice((">=18", ">=18", ">=20")), rng.random() < 0.65, downloads,
                          tuple(versions), tuple(tags))


def plan_universe(plugins: int, seed: int) -> UniversePlan:
    """Decide a universe of ``plugins`` packages (libraries included) without building any bytes."""
    if plugins < 1:
        raise ValueError(f"plugins must be at least 1, got {plugins}")
    drafts = _draft_packages(plugins, seed)
    _draft_histories(drafts, seed)
    urn = _draft_dependencies(drafts, seed)
    cycles = _draft_cycles(drafts, seed)
    found = _draft_advisories(drafts, urn, seed)
    _draft_deprecations(drafts, seed)
    dependents: dict[str, set[str]] = {}
    for d in drafts:
        for entries in d.deps:
            for _, name, _ in entries:
                dependents.setdefault(name, set()).add(d.name)
    rng = random.Random(f"{seed}/finish")
    packages = tuple(_finish(d, rng, len(dependents.get(d.name, ()))) for d in drafts)
    return UniversePlan(plugins, seed, packages, tuple(cycles), tuple(found))


def advisories(plan: UniversePlan) -> list[SeedAdvisory]:
    """Advisories against the plan's packages, in disclosure order (their ids count up per year)."""
    return list(plan.advisories)


def iter_packages(plan: UniversePlan, *, workers: int = 1) -> Iterator[SeedPackage]:
    """Build every package's tarballs lazily, yielding packages in plan order (see ``build_packages``)."""
    return build_packages(plan.packages, workers=workers)
