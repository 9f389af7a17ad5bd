"""Package paths of the origin's routes (parsing is shared: :mod:`eghact_common.npm_paths`)."""

from __future__ import annotations

from dataclasses import dataclass

from eghact_common.npm_paths import raw_segments, split_package

__all__ = ["PackagePath", "package_path", "raw_segments"]


@dataclass(frozen=True)
class PackagePath:
    name: str
    rest: tuple[str, ...]


def package_path(segments: list[str]) -> PackagePath:
    """Split decoded segments into the package name and what follows it."""
    name, rest = split_package(segments)
    return PackagePath(name, tuple(rest))
