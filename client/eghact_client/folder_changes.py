"""What an install does to the plugins folder, as the lifecycle hooks see it: which packages
leave it, come at another version or come new, each after the packages it depends on."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from .capabilities import dependency_graph
from .hooks import HookTarget
from .lockfile import Lock
from .state import State

__all__ = ["folder_changes", "load_order"]


def load_order(lock: Lock, keys: set[str]) -> list[str]:
    """``keys`` with each package after the packages it depends on (a cycle: lockfile order)."""
    graph = dependency_graph(lock)
    ordered: list[str] = []
    seen: set[str] = set()

    def visit(key: str) -> None:
        stack = [(key, iter(graph.get(key, ())))]
        seen.add(key)
        while stack:
            node, children = stack[-1]
            child = next(children, None)
            if child is None:
                stack.pop()
                if node in keys:
                    ordered.append(node)
            elif child not in seen:
                seen.add(child)
                stack.append((child, iter(graph.get(child, ()))))

    for key in sorted(keys):
        if key not in seen:
            visit(key)
    return ordered


def folder_changes(new: Lock, placed: set[str], state: State, plugins: Path) -> list[tuple[str, list[HookTarget]]]:
    """What an install does to the folder, as the hooks see it: packages that leave it
    (``Remove``), come at another version (``Update``) or come new (``Install``), in load order."""
    by_key = {p.key: p for p in new.packages}
    before = {k: e for k, e in state.plugins.items() if state.placed(k) and (plugins / k[len("node_modules/"):])
              .is_dir()}
    removed, updated, installed = [], [], []
    for key in load_order(new, placed):
        package, old = by_key[key], before.get(key)
        target = HookTarget(key, package.name, package.version, plugins / package.folder)
        if old is None:
            installed.append(target)
        elif old.get("integrity") != package.integrity:
            if old.get("version") != package.version:
                updated.append(replace(target, previous=str(old.get("version"))))
            else:
                installed.append(target)
    for key in sorted(set(before) - placed, key=lambda k: (-k.count("/"), k)):
        old = before[key]
        removed.append(HookTarget(key, str(old.get("name")), str(old.get("version")),
                                  plugins / key[len("node_modules/"):]))
    return [("Remove", removed), ("Update", updated), ("Install", installed)]
