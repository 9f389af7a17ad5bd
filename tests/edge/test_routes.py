"""Raw paths to cache keys: every spelling of a scoped name is one key."""

from __future__ import annotations

import pytest

from eghact_common.errors import EghactError
from eghact_edge import routes


@pytest.mark.parametrize("raw", ["/@scope/name", "/@scope%2fname", "/@scope%2Fname"])
def test_scoped_spellings_share_one_key(raw: str) -> None:
    route = routes.parse(raw)
    assert route.kind == routes.PACKUMENT
    assert route.name == "@scope/name"
    assert route.cache_key(True) == "/@scope%2fname#a"
    assert route.upstream_path == "/@scope%2fname"


@pytest.mark.parametrize("raw", ["/@scope/name/-/name-1.0.0.tgz", "/@scope%2fname/-/name-1.0.0.tgz",
                                 "/@scope%2Fname/-/name-1.0.0.tgz"])
def test_scoped_tarball_spellings(raw: str) -> None:
    route = routes.parse(raw)
    assert (route.kind, route.key, route.tag) == (routes.TARBALL, "/@scope/name/-/name-1.0.0.tgz",
                                                  "tgz:@scope/name@1.0.0")


@pytest.mark.parametrize(("raw", "upstream"), [
    ("/%C3%97%C3%B8/-/x-1.0.0.tgz", "/%C3%97%C3%B8/-/x-1.0.0.tgz"),
    ("/@sc%2fn%C3%B8/-/n%C3%B8-1.0.0.tgz", "/@sc/n%C3%B8/-/n%C3%B8-1.0.0.tgz"),
    ("/@scope%2fname/-/name-1.0.0.tgz", "/@scope/name/-/name-1.0.0.tgz"),
])
def test_a_tarball_goes_upstream_escaped(raw: str, upstream: str) -> None:
    # Found by the fuzz pass: the decoded name went upstream raw, and a non-ASCII one put
    # bytes into the request line that the upstream refused with a text/plain 400.
    route = routes.parse(raw)
    assert route.kind == routes.TARBALL
    assert route.upstream_path == upstream
    assert route.upstream_path.isascii()


def test_kinds_and_tags() -> None:
    assert routes.parse("/left-pad/1.0.0").kind == routes.VERSION
    assert routes.parse("/left-pad").tag == "pkg:left-pad"
    assert routes.parse("/-/package/@a%2fb/dist-tags").tag == "pkg:@a/b"
    search_a = routes.parse("/-/v1/search?text=x&size=5")
    search_b = routes.parse("/-/v1/search?size=5&text=x")
    assert search_a.key == search_b.key and search_a.tag == "search"
    assert routes.parse("/-/whoami").kind is None
    assert routes.parse("/-/v1/resolutions/abc123").tag == "res:abc123"


def test_abbreviated_and_full_are_separate_keys() -> None:
    route = routes.parse("/left-pad")
    assert route.cache_key(True) != route.cache_key(False)
    tarball = routes.parse("/left-pad/-/left-pad-1.0.0.tgz")
    assert tarball.cache_key(True) == tarball.cache_key(False)


@pytest.mark.parametrize("raw", ["/@scope", "/@scope%2f", "/a%00b", "/" + "x" * 300, "/.hidden",
                                 "/a/-/..%2fetc.tgz"])
def test_bad_names_are_refused(raw: str) -> None:
    with pytest.raises(EghactError) as info:
        routes.parse(raw)
    assert info.value.status == 400


def test_tarball_version() -> None:
    assert routes.tarball_version("@s/n", "n-1.2.3-beta.1.tgz") == "1.2.3-beta.1"
    assert routes.tarball_version("n", "other-1.0.0.tgz") is None
    assert routes.tarball_path("@s/n", "1.0.0") == "/@s/n/-/n-1.0.0.tgz"
