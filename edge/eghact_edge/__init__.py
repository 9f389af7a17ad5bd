"""Eghact edge cache node (issue 4). It reaches the origin only over HTTP, never by import.

    server      the low-level aiohttp front: the hit fast path and a tiny dispatcher
    node        builds and starts every part from EdgeSettings (settings)
    readthrough tiers -> freshness -> single flight (coalesce) -> upstream; entry_builder builds entries
    cache       memory then disk (tiers/: memory with TinyLFU admission, disk with diskcache)
    freshness   RFC 9111/5861 lifetimes, swr, sie, feed-extended freshness, gaps
    follower    the changes feed (SSE) -> purges; position in feed.seq (state)
    warming     popularity, refetch, refresh ahead, warm start; hints; fleet_client (stats, registration)
    proxy       writes and everything uncached, with read-your-writes purges
    front_serving, workers, network, cli   processes: one edge, N workers, the local network
"""
