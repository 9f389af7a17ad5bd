"""Every typed application and request key, declared in one place."""

from __future__ import annotations

from aiohttp import web

from ..auth import AccessPolicy, Principal
from ..feed import ChangeNotifier
from ..metrics import Reporter
from ..registry import Registry
from ..resolution.service import Resolutions
from ..settings import OriginSettings
from ..tokens import TokenResolver
from ..uplinks.overrides import OnAllowed
from ..uplinks.service import UplinkService

SETTINGS = web.AppKey("settings", OriginSettings)
REGISTRY = web.AppKey("registry", Registry)
ACCESS = web.AppKey("access", AccessPolicy)
NOTIFIER = web.AppKey("notifier", ChangeNotifier)
REPORTER = web.AppKey("reporter", Reporter)
TOKENS = web.AppKey("tokens", TokenResolver)
RESOLUTIONS = web.AppKey("resolutions", Resolutions)
# Recomputes an uplinked package's view after an admin changed its overrides (the uplink
# service's ``reapply``); None while no uplink is configured.
ON_ALLOWED = web.AppKey[OnAllowed | None]("on_allowed")
# Only with --uplink: handlers look it up with ``app.get`` and do nothing more without it.
UPLINKS = web.AppKey("uplinks", UplinkService)
# Long-lived responses (SSE, long-poll) watch this to end promptly on shutdown.
CLOSING = web.AppKey("closing", object)
# The OpenAPI document served at /-/openapi.json, encoded once at start.
OPENAPI = web.AppKey("openapi", bytes)

# Per-request values (aiohttp requests are plain mappings).
# A union is not a class: the type goes in the subscript, as aiohttp documents for such keys.
PRINCIPAL = web.RequestKey[Principal | None]("principal")
ROUTE = web.RequestKey("route", str)
