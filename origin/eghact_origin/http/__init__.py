"""The origin's HTTP surface (DESIGN §3): one module per concept, wired in ``app.py``."""
