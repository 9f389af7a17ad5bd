"""Uplinks: public packages pulled through from upstream npm-compatible registries
(:mod:`.config` the flags and routing, :mod:`.client` the upstream requests, :mod:`.convert`
upstream documents into rows, :mod:`.policy` what may be stored, :mod:`.service` the pull-through)."""
