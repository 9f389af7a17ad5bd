"""Uplinks: public npm packages pulled through from an upstream registry (issue 14).

:mod:`.policy` decides which upstream versions an uplinked package shows (the supply-chain
cooldown and advisory blocking); it is pure, and the uplink service calls it on every pull,
refresh and admin override.
"""
