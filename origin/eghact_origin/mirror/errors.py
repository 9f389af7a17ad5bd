"""The one error of applying a mirror bundle, shared by both ways of applying it."""

from __future__ import annotations

from eghact_common.errors import EghactError


class MirrorApplyError(EghactError):
    """A staged bundle that does not fit this mirror. ``exit_code`` is stable per cause."""

    status = 409

    def __init__(self, message: str, *, code: str, exit_code: int):
        super().__init__(message, code=code)
        self.exit_code = exit_code

