"""MetadataStore contract: tokens (hashes only) and the audit outbox."""

from __future__ import annotations

import json

from .conftest import Backend


async def test_tokens_are_created_found_listed_and_revoked(backend: Backend) -> None:
    store = backend.metadata
    head = store.audit_head()
    first = store.create_token_sync("ci", "a" * 64, ["publish:@acme/*"], actor="cli")
    second = store.create_token_sync("edge", "b" * 64, ["edge"], actor="cli")
    assert first != second
    found = await store.token_by_hash("a" * 64)
    assert found is not None and (found.id, found.name, found.scopes, found.revoked) == \
        (first, "ci", ("publish:@acme/*",), None)
    assert await store.token_by_hash("c" * 64) is None
    assert [t.name for t in store.tokens_sync()] == ["ci", "edge"]
    backend.clock.advance(60)
    assert store.revoke_token_sync(None, "edge", actor="cli") == 1
    assert store.revoke_token_sync(second, None, actor="cli") == 0  # already revoked
    assert store.revoke_token_sync(first, None, actor="cli") == 1
    revoked = store.token_by_hash_sync("b" * 64)
    assert revoked is not None and revoked.revoked is not None and revoked.revoked > revoked.created
    assert store.audit_head() == head + 4  # two creations, two revocations


def test_audit_records_reach_the_log_in_order(backend: Backend) -> None:
    store = backend.metadata
    store.create_token_sync("ci", "d" * 64, ["read"], actor="cli")
    store.flush_audit()
    assert store.flush_audit() == 0  # nothing left in the outbox
    path = getattr(store, "audit_path", None)
    if path is not None:  # a backend that keeps the log in a file
        lines = [json.loads(line) for line in path.read_text().splitlines()]
        assert [r["action"] for r in lines][-1] == "token-create" and lines[-1]["id"] == store.audit_head()
