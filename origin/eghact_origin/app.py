"""``create_app(settings)``: builds the origin's parts and wires them to routes."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

from aiohttp import web

from eghact_common import openapi, wire

from .auth import AccessPolicy
from .feed import ChangeNotifier
from .http import batch, changes, dist_tags, fleet, packages, resolve, service
from .http import uplinks as uplinks_http
from .http.appkeys import (
    ACCESS,
    CLOSING,
    NOTIFIER,
    ON_ALLOWED,
    OPENAPI,
    REGISTRY,
    REPORTER,
    RESOLUTIONS,
    SETTINGS,
    TOKENS,
    UPLINKS,
)
from .http.middleware import access, context, errors
from .metrics import PrometheusReporter, Reporter
from .registry import Registry
from .resolution.closure import FetchMissing, PullLimits
from .resolution.cousage import CoUsage
from .resolution.service import Resolutions
from .settings import OriginSettings
from .storage import FileBlobStore, SqliteMetadataStore
from .tarball import TarballLimits
from .tokens import TokenResolver
from .uplinks.policy import PullPolicy
from .uplinks.service import UplinkService


def open_registry(settings: OriginSettings, *,
                  on_change: Callable[[list[wire.ChangeEvent]], Awaitable[None]] | None = None) -> Registry:
    """The store, blobs and domain facade over a data dir (also used by the CLI)."""
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    blobs = FileBlobStore(settings.data_dir / "blobs")
    blobs.clean_temp()
    store = SqliteMetadataStore(settings.data_dir)
    return Registry(
        store, blobs,
        access=AccessPolicy(settings.private_scopes),
        limits=TarballLimits(max_bytes=settings.max_tarball_bytes),
        cache_bytes=settings.cache_bytes,
        on_change=on_change,
    )


def create_app(settings: OriginSettings, *, reporter: Reporter | None = None,
               fetch_missing: FetchMissing | None = None, clock: Callable[[], float] = time.time) -> web.Application:
    """The origin's app. ``fetch_missing``: how resolutions make missing dependencies present
    (an uplink service's ``ensure_many``); None resolves only what the store holds. ``clock``:
    the uplinks' time (pull policy, max ages, the refresher), injected by tests."""
    app = web.Application(middlewares=[access, errors, context], client_max_size=settings.max_request_bytes)

    reporter = reporter or PrometheusReporter()
    # One dispatcher for every committed change, local or not (feed.py): writers hand it their
    # events, its poll finds everyone else's, and each subscriber gets each seq once, in order.
    # (``notifier`` is bound before any event flows.)
    registry = open_registry(settings, on_change=lambda events: notifier.committed(events))
    notifier = ChangeNotifier(registry.store, poll_interval=settings.feed_poll_interval, reporter=reporter)
    uplinks = None
    if settings.uplinks is not None:
        uplinks = UplinkService(settings.uplinks, registry, reporter=reporter,
                                policy=PullPolicy.from_settings(settings), clock=clock)
        notifier.subscribe("uplinks", uplinks.invalidate)
        app[UPLINKS] = uplinks
    co_usage = CoUsage(registry.store, top=settings.co_usage_top, half_life=settings.co_usage_half_life)
    resolutions = Resolutions(registry.store, registry.access,
                              workers=settings.resolver_workers, max_roots=settings.resolve_max_roots,
                              max_stored=settings.resolutions_max_stored,
                              co_usage=co_usage, on_commit=notifier.poke, reporter=reporter,
                              fetch_missing=fetch_missing or (uplinks.ensure_many if uplinks is not None else None),
                              held_back=uplinks.why_missing if uplinks is not None else None,
                              pull_limits=PullLimits(settings.resolve_fetch_max_names,
                                                     settings.resolve_fetch_seconds, settings.resolve_fetch_rounds))
    notifier.subscribe("registry", registry.invalidate)
    notifier.subscribe("resolutions", resolutions.invalidate)
    app[SETTINGS] = settings
    app[REGISTRY] = registry
    app[ACCESS] = registry.access
    app[NOTIFIER] = notifier
    app[REPORTER] = reporter
    app[TOKENS] = TokenResolver(registry.store, ttl=settings.token_cache_seconds)
    app[RESOLUTIONS] = resolutions
    app[CLOSING] = asyncio.Event()
    app[OPENAPI] = openapi.to_json(openapi.origin_document())
    # An admin's per-version override recomputes the package's view before the answer.
    app[ON_ALLOWED] = uplinks.reapply if uplinks is not None else None

    router = app.router
    router.add_get("/-/v1/changes", changes.changes)
    router.add_post("/-/v1/batch", batch.batch)
    router.add_post("/-/v1/resolve", resolve.resolve)
    router.add_get("/-/v1/resolutions/{hash}", resolve.resolution)
    router.add_get("/-/v1/popular", fleet.popular)
    router.add_post("/-/v1/stats", fleet.stats)
    router.add_get("/-/v1/edges", fleet.list_edges)
    router.add_post("/-/v1/edges", fleet.register_edge)
    router.add_get("/-/v1/feed", fleet.feed_extent)
    router.add_route("*", uplinks_http.PREFIX + "{tail:.*}", uplinks_http.allowed)
    router.add_get("/-/v1/search", service.search)
    router.add_post("/-/npm/v1/security/advisories/bulk", service.advisories_bulk)
    router.add_get("/-/whoami", service.whoami)
    router.add_get("/-/ping", service.ping)
    router.add_get("/-/health", service.health)
    router.add_get("/-/metrics", service.metrics)
    router.add_get(openapi.PATH, service.openapi)
    router.add_route("*", "/-/package/{tail:.*}", dist_tags.dispatch)
    router.add_route("*", r"/{name:[^-].*}", packages.dispatch)

    async def start(app: web.Application) -> None:
        # Before the notifier reads its first public seq: the numbering must follow our scopes.
        await registry.store.configure_public_view(settings.private_scopes)
        await notifier.start()
        await resolutions.start()
        if uplinks is not None:
            await uplinks.start()

    async def shutdown(app: web.Application) -> None:
        app[CLOSING].set()  # type: ignore[attr-defined]
        await notifier.stop()
        await resolutions.stop()
        if uplinks is not None:
            await uplinks.stop()

    async def cleanup(app: web.Application) -> None:
        registry.store.close()

    app.on_startup.append(start)
    app.on_shutdown.append(shutdown)
    app.on_cleanup.append(cleanup)
    return app
