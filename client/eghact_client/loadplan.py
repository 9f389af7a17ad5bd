"""The lockfile's load plan as the client executes it (the format: DESIGN §4, written by the
resolver's ``loadplan.py``; the client only reads it, over the lockfile it was sent).

``{"chunks": [{"id", "plugins": [key...], "mode": "eager"|"lazy", "requires": [id...], "bytes"}],
"prefetch": {"lazy:<root>": ["lazy:<other root>", ...]}}``

- **Eager** keys are placed by ``install`` and become ``active``; so is every package of the
  lockfile that no chunk holds (the plan leaves out what nothing loaded reaches; placing it
  costs little and keeps the folder npm's whenever the plan says nothing).
- **Lazy** keys are placed on the first ``activate`` of a plugin whose chunks hold them.
  Activating ``NAME`` loads its entry chunk (``lazy:NAME`` when it is a lazy root, else the
  chunk holding ``node_modules/NAME``) after everything that chunk ``requires``, transitively:
  :meth:`LoadPlan.load_set`.
- **Hints**: :meth:`LoadPlan.hint_order` lists the lazy keys most likely needed first: the
  chunks the plan's ``prefetch`` names most often, then the rest in plan order.

A plan that names a key the lockfile does not hold, or a chunk that does not exist, is an
invalid lockfile (every problem at once): executing it would place or skip the wrong packages.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any

from .errors import InvalidLockfile
from .lockfile import Lock

__all__ = ["EAGER", "Chunk", "LoadPlan"]

EAGER = "eager"


@dataclass(frozen=True)
class Chunk:
    id: str
    keys: tuple[str, ...]
    eager: bool
    requires: tuple[str, ...]


@dataclass(frozen=True)
class LoadPlan:
    chunks: dict[str, Chunk]
    prefetch: dict[str, tuple[str, ...]]
    eager_keys: frozenset[str]     # placed and active at install (eager chunk, and keys in no chunk)
    lazy_keys: frozenset[str]      # placed on first activate

    @classmethod
    def of(cls, lock: Lock) -> LoadPlan:
        raw = lock.document["loadPlan"]
        known = {p.key for p in lock.packages}
        problems: list[str] = []
        chunks: dict[str, Chunk] = {}
        listed = raw.get("chunks")
        for i, entry in enumerate(listed if isinstance(listed, list) else []):
            chunk = _chunk(i, entry, known, problems)
            if chunk is not None:
                chunks[chunk.id] = chunk
        if not isinstance(listed, list):
            problems.append("loadPlan.chunks: expected an array")
        for chunk in chunks.values():
            problems.extend(f"loadPlan chunk {chunk.id!r} requires {needed!r}, which is not a chunk"
                            for needed in chunk.requires if needed not in chunks)
        prefetch_raw = raw.get("prefetch")
        prefetch = {str(k): tuple(str(c) for c in v if isinstance(c, str) and c in chunks)
                    for k, v in (prefetch_raw.items() if isinstance(prefetch_raw, dict) else ())
                    if isinstance(v, list)}
        if problems:
            raise InvalidLockfile(problems)
        lazy = {key for chunk in chunks.values() if not chunk.eager for key in chunk.keys}
        return cls(chunks, prefetch, frozenset(known - lazy), frozenset(lazy))

    def entry(self, key: str) -> str | None:
        """The chunk that activating the package at ``key`` starts from, or None for a package
        in no chunk (placed at install, nothing to load)."""
        name = key[len("node_modules/"):] if key.count("node_modules/") == 1 else None
        if name is not None and f"lazy:{name}" in self.chunks:
            return f"lazy:{name}"
        return next((c.id for c in self.chunks.values() if key in c.keys), None)

    def load_set(self, key: str) -> list[str]:
        """The keys activating ``key`` loads, dependencies' chunks first (``key`` alone when it
        is in no chunk)."""
        start = self.entry(key)
        if start is None:
            return [key]
        ordered = self._closure(start)
        return ordered if key in ordered else [*ordered, key]

    def hint_order(self) -> list[str]:
        """Every lazy key, the likeliest first: chunks by how often the plan's ``prefetch``
        names them (each with what it requires), then the other lazy chunks in plan order."""
        named = Counter(c for likely in self.prefetch.values() for c in likely)
        keys: dict[str, None] = {}
        for chunk_id in sorted(self.chunks, key=lambda c: -named[c]):   # stable: plan order among equals
            if not self.chunks[chunk_id].eager:
                keys.update((key, None) for key in self._closure(chunk_id) if key in self.lazy_keys)
        return list(keys)

    def _closure(self, chunk_id: str) -> list[str]:
        """The keys of ``chunk_id`` after those of every chunk it requires, transitively."""
        ordered: list[str] = []
        seen: set[str] = set()

        def visit(current: str) -> None:
            # the plan puts no chunk in a cycle (a cycle of packages stays in one chunk); ``seen``
            # still bounds a hand-made plan that has one
            if current in seen:
                return
            seen.add(current)
            for needed in self.chunks[current].requires:
                visit(needed)
            ordered.extend(self.chunks[current].keys)

        visit(chunk_id)
        return ordered


def _chunk(i: int, entry: Any, known: set[str], problems: list[str]) -> Chunk | None:
    where = f"loadPlan.chunks[{i}]"
    if not isinstance(entry, dict) or not isinstance(entry.get("id"), str):
        problems.append(f"{where}: expected an object with an id")
        return None
    keys, requires, mode = entry.get("plugins"), entry.get("requires", []), entry.get("mode")
    if not isinstance(keys, list) or not all(isinstance(k, str) for k in keys):
        problems.append(f"{where}.plugins: expected an array of package keys")
        return None
    if not isinstance(requires, list) or not all(isinstance(r, str) for r in requires):
        problems.append(f"{where}.requires: expected an array of chunk ids")
        return None
    if mode not in ("eager", "lazy"):
        problems.append(f"{where}.mode: expected 'eager' or 'lazy'")
        return None
    problems.extend(f"{where}: {key!r} is not a package of the lockfile" for key in keys if key not in known)
    return Chunk(entry["id"], tuple(keys), mode == "eager", tuple(requires))
