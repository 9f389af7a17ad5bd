"""Uplinks: public packages pulled through from upstream npm-compatible registries (issue 14):
:mod:`.config` the flags and routing, :mod:`.client` the upstream requests, :mod:`.convert`
upstream documents into rows, :mod:`.policy` what of them may be shown (the supply-chain
cooldown and advisory blocking; pure), :mod:`.service` the pull-through, which calls the
policy on every pull, refresh and admin override."""
