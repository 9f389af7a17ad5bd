"""The Eghact origin registry: embedded store, publishing, npm-compatible read API, changes feed."""
