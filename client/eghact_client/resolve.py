"""Resolution: the project's requirements in, a lockfile out, from the nearest source.

The request goes to ``POST /-/v1/resolve`` at the first source that answers (an edge passes it
on to its origin and names itself in the lockfile's URLs). When the request is the one the
current lockfile was resolved for (its digest is in the project's state, with the resolution's
hash) the client asks for the built resolution instead, ``GET /-/v1/resolutions/{hash}``: one
request, which an edge answers from its cache. The origin answers that path with the current
build (rebuilt after a publish of any package it considered), or 404 when it dropped the build:
then the request is posted as usual.
"""

from __future__ import annotations

import logging
from typing import Any

from .errors import Unresolvable, from_answer
from .lockfile import Lock
from .project import Project
from .sources import Sources
from .state import State, request_digest

__all__ = ["Resolution", "resolve"]

log = logging.getLogger("eghact.client")


class Resolution:
    """A lockfile fresh from the registry, the digest of the request it answers, and how it
    was obtained (``prebuilt`` or ``resolved``) and from where."""

    def __init__(self, lock: Lock, request: str, how: str, source: str):
        self.lock = lock
        self.request = request
        self.how = how
        self.source = source


async def resolve(project: Project, sources: Sources, *, state: State, lock: Lock | None,
                  request: dict[str, Any] | None = None) -> Resolution:
    """Resolve ``project`` (or post ``request``, built for it by an update: never the prebuilt
    resolution, which may be the very build being updated); raises ``Unresolvable`` (with the
    registry's explanation), the registry's 4xx as its error, or ``NoSourceReachable``."""
    posting = request is not None
    request = request if request is not None else project.resolve_request()
    digest = request_digest(request)
    if not posting and lock is not None and state.request == digest and state.hash == lock.hash:
        source, response = await sources.request("GET", f"/-/v1/resolutions/{lock.hash}")
        if response.status == 200:
            log.info("the request is unchanged: the built resolution %s from %s", lock.hash[:12], source.url)
            return Resolution(Lock.parse(response.body, where=response.url), digest, "prebuilt", source.url)
        log.info("the built resolution %s is gone (%d): resolving again", lock.hash[:12], response.status)
    source, response = await sources.request("POST", "/-/v1/resolve", body=request)
    if response.status != 200:
        raise from_answer(response.status, response.body, what="resolve")
    try:
        answer = response.json()
    except ValueError:
        answer = None
    if isinstance(answer, dict) and answer.get("prompt"):
        # version=prompt: the registry hands the choice back; the client has no one to ask here
        raise Unresolvable("the strategy asks to choose between versions (version=prompt): choose in the project's "
                           "dependencies", code="choices", detail={"choices": answer.get("choices")})
    resolved = Lock.parse(response.body, where=response.url)
    log.info("resolved %d packages at %s (resolution %s)", len(resolved.packages), source.url, resolved.hash[:12])
    return Resolution(resolved, digest, "resolved", source.url)
