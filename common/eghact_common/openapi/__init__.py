"""The OpenAPI documents of the origin and the edge, from the YAML beside this module.

``origin.yaml`` describes the origin's HTTP API; ``edge.yaml`` holds only what an edge adds
or answers itself, and :func:`edge_document` lays it over the origin's, so that the read API
the two share is written once. Each server loads its document once at start and serves it at
``GET /-/openapi.json``; the tests check both against the servers' routes and fuzz the
servers from them.
"""

from __future__ import annotations

import copy
import json
from functools import cache
from importlib.resources import files
from typing import Any

import yaml

__all__ = ["PATH", "edge_document", "edge_paths", "origin_document", "to_json"]

PATH = "/-/openapi.json"
_METHODS = ("get", "put", "post", "delete", "patch", "head", "options")


@cache
def _load(name: str) -> dict[str, Any]:
    # Cached: the files are package data and never change while a process runs; callers get copies.
    loaded: dict[str, Any] = yaml.safe_load(files(__package__).joinpath(name).read_text(encoding="utf-8"))
    return loaded


def origin_document() -> dict[str, Any]:
    """The origin's document (a fresh copy: the caller may change it)."""
    return copy.deepcopy(_load("origin.yaml"))


def edge_paths() -> frozenset[str]:
    """The paths an edge answers itself (edge.yaml's); it passes or reads through the rest."""
    return frozenset(_load("edge.yaml")["paths"])


def edge_document() -> dict[str, Any]:
    """The origin's document with the edge's paths in place of the origin's of the same path,
    and the edge's ``x-passed-responses`` added to every operation taken from the origin."""
    doc = origin_document()
    edge = copy.deepcopy(_load("edge.yaml"))
    passed: dict[str, Any] = edge.pop("x-passed-responses")
    for item in doc["paths"].values():
        for method in _METHODS:
            if method in item:
                responses = item[method]["responses"]
                for status, response in passed.items():
                    responses.setdefault(status, response)
    doc["info"] = edge["info"]
    doc["paths"].update(edge["paths"])
    for section, entries in edge.get("components", {}).items():
        doc["components"].setdefault(section, {}).update(entries)
    return doc


def to_json(document: dict[str, Any]) -> bytes:
    """The bytes served at ``/-/openapi.json``."""
    return json.dumps(document, separators=(",", ":"), ensure_ascii=False).encode()
