"""``/-/v1/uplinks/allowed/{name}[/{version}]``: the admin's per-version overrides of the
uplinks' pull policy (a version shown although the cooldown or an advisory would hide it).

    GET    /-/v1/uplinks/allowed/{name}            the versions of name let through
    PUT    /-/v1/uplinks/allowed/{name}/{version}  let one through (200; ``changed`` false
                                                   when it was already)
    DELETE /-/v1/uplinks/allowed/{name}/{version}  withdraw that (404 when it was not)

Admin tokens only, GET included: the list says what an operator chose to trust. A scoped name
is ``@scope/name`` or ``@scope%2fname``, as in package paths. After a change the app's
:data:`~.appkeys.ON_ALLOWED` hook (the uplink service's ``reapply``) recomputes the package's
view before the answer goes out, so the admin's next read sees it.
"""

from __future__ import annotations

from aiohttp import web

from eghact_common import names, semver
from eghact_common.errors import MethodNotAllowed, NotFound

from ..uplinks.overrides import validate
from .appkeys import ACCESS, ON_ALLOWED, PRINCIPAL, REGISTRY, ROUTE
from .paths import package_path, raw_segments
from .responses import json_ok

PREFIX = "/-/v1/uplinks/allowed/"


async def allowed(request: web.Request) -> web.StreamResponse:
    request[ROUTE] = "uplinks-allowed"
    # Who asks comes first: nothing about the path is answered to anyone but an admin.
    principal = request.app[ACCESS].check_admin(request[PRINCIPAL], "the uplinks' allow-list")
    path = package_path(raw_segments(request.raw_path)[4:])  # drop "-", "v1", "uplinks", "allowed"
    store = request.app[REGISTRY].store
    if request.method in ("GET", "HEAD"):
        if path.rest:
            raise NotFound(f"GET {PREFIX}{{name}} lists a package's allowed versions; there is nothing below it")
        name = names.validate_name(path.name, legacy=True)
        versions = sorted(await store.uplink_allowed(name), key=lambda v: semver.Version(v, loose=True))
        return json_ok({"name": name, "versions": versions})
    if request.method not in ("PUT", "DELETE"):
        raise MethodNotAllowed(f"{request.method} is not supported here: GET, PUT or DELETE")
    if len(path.rest) != 1:
        raise NotFound(f"{request.method} takes {PREFIX}{{name}}/{{version}}")
    name, version = validate(path.name, path.rest[0])
    if request.method == "PUT":
        changed = await store.uplink_allow(name, version, actor=principal.name)
    else:
        changed = await store.uplink_disallow(name, version, actor=principal.name)
        if not changed:
            raise NotFound(f"{name}@{version} is not on the uplinks' allow-list",
                           detail={"name": name, "version": version})
    hook = request.app[ON_ALLOWED]
    if changed and hook is not None:
        await hook(name)
    return json_ok({"ok": True, "name": name, "version": version, "changed": changed})
