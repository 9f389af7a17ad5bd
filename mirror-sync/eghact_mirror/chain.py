"""The chain: where the next bundle or synced batch must start.

Every applied link — an imported bundle or a batch the follower synced — has a digest (the
sha512 of its index bytes) and names the digest of the link before it; ``mirror-apply``
refuses anything whose ``from_seq`` and ``previous_digest`` are not the mirror's position.
So whoever produces the next link must know the last one. ``export --after`` takes it from:

* a bundle (single or split): verified with the exporter's own key, then its index;
* an index file: ``DIR/sync/<digest>.json`` (kept by ``sync`` for every batch) or
  ``DIR/verification/<digest>.index.json`` (kept by ``import`` for every bundle);
* a mirror data dir: its ``mirror.json`` (written by ``mirror-apply``) gives the seq and the
  last digest, and the index kept under that digest, if any, gives the selection.

That last form is how a staging host continues a chain it synced: mirror online with
``sync``, copy the data dir across the gap once, then ``export --after`` the staging dir;
each later bundle goes ``--after`` the previous bundle.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import index as fmt
from . import inputs
from .errors import MirrorError
from .signing import TrustedKey


@dataclass(frozen=True)
class Link:
    origin_id: str | None
    seq: int
    digest: str | None
    # What the mirror holds after this link when its selection was an explicit set of names;
    # None when the selection was everything or a name predicate, or when it is unknown.
    names: tuple[str, ...] | None
    names_known: bool
    selection: dict[str, Any] | None = None


START = Link(None, 0, None, (), True)


def pulled_of(link: Link) -> dict[str, frozenset[str]] | None:
    """Each pulled package's versions the mirror holds after ``link`` (its index's
    ``selection.pulled``); {} at the start of a chain, None when the link does not say (an
    index from before pulled packages travelled, or ``--since``)."""
    if link.seq == 0:
        return {}
    found = (link.selection or {}).get("pulled")
    if not isinstance(found, dict):
        return None
    return {str(name): frozenset(str(v) for v in versions) for name, versions in found.items()
            if isinstance(versions, list)}


def link_of(index: fmt.Index, digest: str) -> Link:
    names = index.selection.get("names")
    return Link(index.origin_id, index.to_seq, digest, tuple(names) if isinstance(names, list) else None,
                True, index.selection)


def journal_path(mirror: Path, digest: str) -> Path:
    """Where ``sync`` keeps the index of a batch it applied."""
    return mirror / "sync" / f"{digest}.json"


def record_index_path(mirror: Path, digest: str) -> Path:
    """Where ``import`` keeps the exact signed index of a bundle it applied."""
    return mirror / "verification" / f"{digest}.index.json"


def mirror_position(mirror: Path) -> dict[str, Any] | None:
    """``mirror.json`` as mirror-apply wrote it, or None for a mirror nothing was applied to."""
    path = mirror / "mirror.json"
    if not path.exists():
        return None
    _, state = inputs.read_json(path, "the mirror position")
    try:
        int(state["applied_seq"])
    except (ValueError, KeyError, TypeError) as exc:
        raise MirrorError("bad_input", f"{path} is not a mirror position: {exc!r}") from exc
    return state


def mirror_link(mirror: Path) -> Link:
    state = mirror_position(mirror)
    if state is None:
        return START
    digest = state.get("last_bundle")
    for candidate in (journal_path(mirror, digest), record_index_path(mirror, digest)) if digest else ():
        if candidate.is_file():
            data = inputs.read_capped(candidate, inputs.MAX_BYTES, what="the index")
            if fmt.digest(data) == digest:
                return link_of(fmt.index_of(inputs.parse(data, candidate, "the index")), digest)
    return Link(state.get("source_origin_id"), int(state["applied_seq"]), digest, None, False)


def read_link(path: Path, key: TrustedKey) -> Link:
    """The link ``path`` ends with: a bundle, an index file, or a mirror data dir."""
    if path.is_dir():
        if not (path / "mirror.json").exists() and not (path / "registry.sqlite3").exists():
            raise MirrorError("bad_input", f"{path} is a directory but not a mirror data dir")
        return mirror_link(path)
    if path.suffix == ".json" and not path.name.endswith(".parts.json") and path.is_file():
        data, body = inputs.read_json(path, "the --after index file")
        try:
            return link_of(fmt.index_of(body), fmt.digest(data))
        except MirrorError as error:
            raise MirrorError("bad_input", f"the --after index file {path} is not an index: {error.message}",
                              detail=error.detail) from error
    from .verify import verify_bundle  # here: verify imports reader/zstd, which a dir or index does not need

    try:
        verified = verify_bundle(path, key)
    except MirrorError as error:
        raise MirrorError("bad_input", f"the --after bundle {path} does not verify with this export's key "
                          f"({error.code}: {error.message})") from error
    return link_of(verified.index, verified.digest)
