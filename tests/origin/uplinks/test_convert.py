"""``convert.pulled_package``: an upstream packument turned into the rows we serve."""

from __future__ import annotations

import json
from typing import Any

from eghact_origin.packument import materialize
from eghact_origin.uplinks.convert import pulled_package

_SRI = "sha512-" + "A" * 86 + "=="


def _doc(version_extra: dict[str, Any]) -> dict[str, Any]:
    return {"name": "left-pad", "dist-tags": {"latest": "1.0.0"},
            "time": {"created": "2016-01-01T00:00:00.000Z", "1.0.0": "2016-01-01T00:00:00.000Z"},
            "versions": {"1.0.0": {"name": "left-pad", "version": "1.0.0", **version_extra,
                                   "dist": {"integrity": _SRI, "shasum": "0" * 40,
                                            "tarball": "https://upstream.invalid/left-pad/-/left-pad-1.0.0.tgz"}}}}


def _served(version_extra: dict[str, Any]) -> dict[str, Any]:
    pulled = pulled_package("left-pad", "default", "http://127.0.0.1:1", _doc(version_extra), raw=b"",
                            etag=None, last_modified=None, fetched=0.0, hidden={})
    (row,) = pulled.versions
    return json.loads(materialize(row.doc, "http://127.0.0.1:9"))


def test_a_pulled_version_names_the_upstream_publisher_and_invents_none() -> None:
    assert _served({"_npmUser": {"name": "stevemao", "email": "x@y.z"}})["_npmUser"] == {"name": "stevemao"}
    assert "_npmUser" not in _served({})


def test_a_pulled_version_is_served_from_here() -> None:
    served = _served({})
    assert served["dist"]["tarball"] == "http://127.0.0.1:9/left-pad/-/left-pad-1.0.0.tgz"
    assert served["dist"]["integrity"] == _SRI
