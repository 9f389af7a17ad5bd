"""The errors of ``eghact-mirror``: one class, a stable code per cause, an exit code per code.

Policy is data: the table below is the whole contract between this tool and the scripts
and people that run it (it is repeated in the CLI docstring and the README). Codes 10-16
are those of ``eghact-origin mirror-apply``, passed through unchanged, so that a refusal
reads the same whether the mirror tool or the origin noticed it.

Every refusal happens before the mirror's data dir is touched, except the apply codes,
which the origin raises inside its transaction (so nothing is applied either).
"""

from __future__ import annotations

from typing import Any

from eghact_common.errors import EghactError

# code -> (exit code, one line for the table)
EXIT_CODES: dict[str, tuple[int, str]] = {
    "internal_error": (1, "unexpected failure (a bug, or an I/O error such as a full disk)"),
    "usage": (2, "bad command line"),
    "origin_unavailable": (3, "the origin cannot be reached or answered something unexpected (a body past its bound)"),
    "bad_input": (4, "an unreadable key, lockfile, --after bundle or data dir (too big, not JSON, too deep)"),
    "up_to_date": (5, "export: the origin has nothing after the starting seq; no bundle written"),
    "incompatible": (6, "the origin speaks a wire protocol version this tool does not read"),
    "bad_stage": (10, "mirror-apply refused the staged layout (a version mismatch between the tools)"),
    "wrong_origin": (11, "the bundle comes from another origin than the mirror follows"),
    "downgrade": (12, "the bundle ends at or before the mirror's seq"),
    "out_of_order": (13, "the bundle does not start where the mirror is (from_seq / previous digest)"),
    "missing_tarball": (14, "a packument names a tarball that is neither in the bundle nor in the mirror"),
    "digest_mismatch": (15, "a file differs from its signed digest, or a tarball from its integrity or listed size"),
    "replay": (16, "the bundle was applied before and has been superseded"),
    "apply_failed": (17, "mirror-apply failed in an unexpected way (its stderr is shown)"),
    "wrong_key": (20, "the bundle is signed by another key than the trusted one"),
    "bad_signature": (21, "the index signature does not verify: the index was tampered with"),
    "corrupt": (22, "the compressed stream or the tar inside it cannot be decoded (a flipped byte)"),
    "truncated": (23, "the bundle stops short: a partial copy"),
    "extra_file": (24, "the bundle holds a file its signed index does not list"),
    "missing_file": (25, "the signed index lists a file the bundle does not hold"),
    "missing_part": (26, "a part of a split bundle is missing"),
    "bad_part": (27, "a part of a split bundle differs from its signed part manifest"),
    "not_a_bundle": (28, "not an eghact-mirror bundle (no index, unknown format, unsafe or oversized member)"),
}


class MirrorError(EghactError):
    """A refusal or failure with a stable ``code``; ``exit_code`` comes from :data:`EXIT_CODES`."""

    status = 409

    def __init__(self, code: str, message: str, *, detail: dict[str, Any] | None = None):
        if code not in EXIT_CODES:
            raise ValueError(f"unknown mirror error code {code!r}")
        super().__init__(message, code=code, detail=detail)

    @property
    def exit_code(self) -> int:
        return EXIT_CODES[self.code][0]


def exit_table() -> str:
    """The exit-code table as text, for ``--help`` and the docs."""
    return "\n".join(f"  {exit_code:>3}  {code:<19}{text}" for code, (exit_code, text) in EXIT_CODES.items())


def code_for_exit(exit_code: int) -> str | None:
    """The code that ``mirror-apply`` exit status maps to, if it is one we know."""
    return next((code for code, (number, _) in EXIT_CODES.items() if number == exit_code and 10 <= number < 20),
                None)
