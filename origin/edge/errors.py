"""Errors of the edge package, under the origin's single root (origin.errors.OriginError).

OriginError
└── EdgeError
    ├── EdgeConfigError    a parameter or the template cannot make a safe nginx config
    └── EdgeProcessError   nginx rejected the config, did not start, or died; carries nginx's stderr tail
"""

from __future__ import annotations

from origin.errors import OriginError


class EdgeError(OriginError):
    """Root of the edge's errors."""


class EdgeConfigError(EdgeError):
    pass


class EdgeProcessError(EdgeError):
    def __init__(self, message: str, *, stderr_tail: str = "", exit_code: int | None = None) -> None:
        detail = f"{message} (exit code {exit_code})" if exit_code is not None else message
        if stderr_tail:
            detail = f"{detail}\n{stderr_tail}"
        super().__init__(detail)
        self.stderr_tail = stderr_tail
        self.exit_code = exit_code
