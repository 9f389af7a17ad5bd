"""Eghact mirror sync: signed offline bundles and an online follower (issue 5).
It reaches the origin only over HTTP, never by import."""
