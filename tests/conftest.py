"""Shared fixtures: a real origin on 127.0.0.1 with an ephemeral port, and its tokens; the
hypothesis profile CI runs with."""

from __future__ import annotations

import os
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web
from hypothesis import settings

from eghact_origin.app import create_app
from eghact_origin.auth import hash_token, new_token
from eghact_origin.http.appkeys import REGISTRY
from eghact_origin.registry import Registry
from eghact_origin.resolution.closure import FetchMissing
from eghact_origin.settings import OriginSettings

# CI (.ci/run sets CI=true) runs every property test on the same examples each time: a rare
# counterexample that random exploration happens upon must not fail an unrelated submission.
# Local runs keep exploring (hypothesis' default profile, random seeds and the example
# database), which is how such counterexamples are found; print_blob lets whoever meets one
# replay it exactly (@reproduce_failure) and turn it into a data case. Hypothesis 6.116+ loads
# a built-in "ci" profile much like it whenever $CI is set; pyproject allows 6.100, which does
# not, and re-registering the name keeps one definition in force on every version.
settings.register_profile("ci", derandomize=True, database=None, print_blob=True)
if os.environ.get("CI", "").lower() == "true":
    settings.load_profile("ci")


@dataclass
class LiveOrigin:
    url: str
    app: web.Application
    data_dir: Path
    session: aiohttp.ClientSession

    @property
    def registry(self) -> Registry:
        return self.app[REGISTRY]

    def token(self, *scopes: str, name: str = "test") -> str:
        token = new_token()
        self.registry.store.create_token_sync(name, hash_token(token), list(scopes), actor="test")
        return token

    @staticmethod
    def auth(token: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {token}"}


async def start_origin(data_dir: Path, *, fetch_missing: FetchMissing | None = None,
                       setup: Callable[[web.Application], None] | None = None,
                       clock: Callable[[], float] = time.time,
                       **overrides: object) -> tuple[web.AppRunner, str]:
    """An origin app served on 127.0.0.1:0; ``setup`` may set app keys before it starts;
    ``clock``: the uplinks' time."""
    defaults: dict[str, object] = {"port": 0, "access_log": False, "feed_poll_interval": 0.2}
    settings = OriginSettings(data_dir=data_dir, **{**defaults, **overrides})  # type: ignore[arg-type]
    app = create_app(settings, fetch_missing=fetch_missing, clock=clock)
    if setup is not None:
        setup(app)
    runner = web.AppRunner(app, handle_signals=False, shutdown_timeout=2)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    return runner, f"http://{host}:{port}"


@pytest.fixture
async def origin(tmp_path: Path) -> AsyncIterator[LiveOrigin]:
    runner, url = await start_origin(tmp_path / "data", private_scopes=("@acme",))
    async with aiohttp.ClientSession() as session:
        yield LiveOrigin(url, runner.app, tmp_path / "data", session)
    await runner.cleanup()



@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Under pytest-xdist (./dev test): schemathesis gives every operation's test of
    test_openapi_fuzz.py one node id (61 items, two ids), and xdist's schedulers key their work
    by node id, so all but one of each would silently not run. The item's name tells them apart
    (``...[GET /-/health]``): the id is made from it, as pytest makes any test's. ``_id`` is
    pytest's own (9.x); this runs only in xdist's workers, which are the ones that collect."""
    if not hasattr(config, "workerinput"):
        return
    seen: set[str] = set()
    for item in items:
        if item.nodeid in seen and item.parent is not None:
            item._id = item.parent._id.child(item.name)  # type: ignore[attr-defined]
        seen.add(item.nodeid)
