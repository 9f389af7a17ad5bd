"""Shared kernel of the Eghact delivery network: errors, manifest model, semver, integrity,
wire formats. It imports none of the services (origin, edge, mirror); a test checks it."""
