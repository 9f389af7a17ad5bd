"""The PUT body npm's libnpmpublish builds for a tarball (``publish.js``: ``buildMetadata``),
so that real packages are published exactly as npm would send them, without ``npm publish``
(which follows a tarball's ``publishConfig.registry``, away from the origin under test).
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import tarfile
from typing import Any

from eghact_common import semver

__all__ = ["package_json", "publish_body"]


def package_json(tarball: bytes) -> dict[str, Any]:
    """The ``<topdir>/package.json`` of an npm tarball (npm strips the first path component)."""
    with tarfile.open(fileobj=io.BytesIO(tarball), mode="r:gz") as tar:
        for member in tar:
            parts = [p for p in member.name.replace("\\", "/").split("/") if p not in ("", ".")]
            if member.isreg() and len(parts) == 2 and parts[1] == "package.json":
                extracted = tar.extractfile(member)
                assert extracted is not None
                doc = json.loads(extracted.read().decode("utf-8-sig"))
                if not isinstance(doc, dict):
                    raise ValueError(f"{member.name} is not a JSON object")
                return doc
    raise ValueError("no <topdir>/package.json in the tarball")


def publish_body(tarball: bytes, manifest: dict[str, Any], *, registry: str, tag: str = "latest") -> dict[str, Any]:
    """libnpmpublish's metadata: the manifest as the version document, with ``_id`` and
    ``dist`` (sha512 integrity, sha1 shasum, the tarball URL under ``registry``), one dist-tag,
    and the tarball base64 in ``_attachments``."""
    # patchManifest: the version is semver.clean()ed (strict), the name left as it is.
    name, version = manifest["name"], semver.clean(str(manifest["version"])) or manifest["version"]
    version_doc = {**manifest, "version": version}
    version_doc["_id"] = f"{name}@{version}"
    tarball_name = f"{name}-{version}.tgz"
    version_doc["dist"] = {
        **(manifest.get("dist") if isinstance(manifest.get("dist"), dict) else {}),
        "integrity": "sha512-" + base64.b64encode(hashlib.sha512(tarball).digest()).decode(),
        "shasum": hashlib.sha1(tarball).hexdigest(),
        "tarball": f"{registry.rstrip('/')}/{name}/-/{tarball_name}".replace("https://", "http://", 1),
    }
    body: dict[str, Any] = {"_id": name, "name": name}
    if "description" in manifest:  # JSON.stringify leaves an undefined description out
        body["description"] = manifest["description"]
    return {
        **body,
        "dist-tags": {tag: version},
        "versions": {version: version_doc},
        "access": "public",
        "_attachments": {tarball_name: {"content_type": "application/octet-stream",
                                        "data": base64.b64encode(tarball).decode(), "length": len(tarball)}},
    }
