"""Advisory severities, least to worst, as ``npm audit`` names them: a module of its own so that
the CLI can offer them as ``--level`` choices without importing the audit machinery (an
unchanged install must not pay for it)."""

SEVERITIES = ("info", "low", "moderate", "high", "critical")
