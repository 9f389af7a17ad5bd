"""Mirror bundles applied to an origin data dir: the usual way (:mod:`.apply`), into an empty
mirror built aside (:mod:`.fresh`), both writing the same rows (:mod:`.rows`) from packuments cut
into fragments (:mod:`.fragments`)."""
