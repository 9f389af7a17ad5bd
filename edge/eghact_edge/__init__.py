"""Eghact edge cache node (issue 4). It reaches the origin only over HTTP, never by import."""
