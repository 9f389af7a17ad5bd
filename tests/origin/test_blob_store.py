"""The blob store's layout: one level of 256 folders for a new store (its ``layout`` file says
so), two levels for a store made before there was a layout file — read, written and adopted
into as it was made, nothing moved."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from eghact_origin.storage import FileBlobStore


def _tree(root: Path, blobs: list[bytes]) -> list[str]:
    """A staged tree ``ab/<hex>``, as the mirror tool lays it out."""
    digests = []
    for data in blobs:
        digest = hashlib.sha512(data).hexdigest()
        (root / digest[:2]).mkdir(parents=True, exist_ok=True)
        (root / digest[:2] / digest).write_bytes(data)
        digests.append(digest)
    return digests


def test_a_new_store_has_one_level_and_says_so(tmp_path: Path) -> None:
    store = FileBlobStore(tmp_path / "blobs")
    assert (tmp_path / "blobs" / "layout").read_text() == "sha512/ab/<hex>\n"
    digest = store.put(b"one level")
    assert store.path_for(digest) == tmp_path / "blobs" / "sha512" / digest[:2] / digest
    assert store.get(digest) == store.get(digest, len(b"one level")) == b"one level"
    assert FileBlobStore(tmp_path / "blobs").levels == 1  # opened again: the layout file decides


def test_a_store_made_before_the_layout_file_keeps_two_levels(tmp_path: Path) -> None:
    old = hashlib.sha512(b"old blob").hexdigest()
    folder = tmp_path / "blobs" / "sha512" / old[:2] / old[2:4]
    folder.mkdir(parents=True)
    (folder / old).write_bytes(b"old blob")
    store = FileBlobStore(tmp_path / "blobs")
    assert store.levels == 2 and not (tmp_path / "blobs" / "layout").exists()
    assert store.get(old) == b"old blob"
    new = store.put(b"new blob")
    assert store.path_for(new) == tmp_path / "blobs" / "sha512" / new[:2] / new[2:4] / new
    staged = tmp_path / "stage"
    digests = _tree(staged, [b"staged %d" % i for i in range(40)] + [b"old blob"])
    store.adopt(staged)
    assert all(store.get(d) == (b"old blob" if d == old else b"staged %d" % i) for i, d in enumerate(digests))
    assert not [p for p in staged.rglob("*") if p.is_file()]  # every blob moved in


def test_adopting_takes_missing_folders_whole_and_merges_the_others(tmp_path: Path) -> None:
    store = FileBlobStore(tmp_path / "blobs")
    first = store.put(b"already here")
    staged = tmp_path / "stage"
    digests = _tree(staged, [b"blob %d" % i for i in range(300)] + [b"already here"])
    inode = os.stat(staged / digests[0][:2]).st_ino
    moved = store.adopt(staged)
    assert moved < len(digests)  # folders the store lacked moved as one rename each
    if digests[0][:2] != first[:2]:
        assert os.stat(tmp_path / "blobs" / "sha512" / digests[0][:2]).st_ino == inode
    assert all(store.get(d) == (b"already here" if d == first else b"blob %d" % i) for i, d in enumerate(digests))


def test_an_unknown_layout_is_refused(tmp_path: Path) -> None:
    (tmp_path / "blobs").mkdir()
    (tmp_path / "blobs" / "layout").write_text("sha512/abc/<hex>\n")
    with pytest.raises(ValueError, match="layout"):
        FileBlobStore(tmp_path / "blobs")
