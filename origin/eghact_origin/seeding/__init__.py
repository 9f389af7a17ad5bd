"""The demo universe, which is not the registry: planned without bytes (:mod:`.universe`), built
into tarballs (:mod:`.tarballs`), and loaded into a registry (:mod:`.load`); the values passed
between them live in :mod:`.values`."""
