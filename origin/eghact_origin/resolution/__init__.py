"""Built resolutions: the service that keeps them (:mod:`.service`), the worker processes that
build them (:mod:`.worker`), co-usage statistics for load-plan hints (:mod:`.cousage`), and the
``eghact-origin resolve`` client (:mod:`.client`)."""
