"""Errors of the configuration core, in the terms of RFC 6241 rpc-error."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class ErrorInfo:
    """One RFC 6241 rpc-error."""

    tag: str
    message: str
    path: str | None = None
    type: str = "application"
    app_tag: str | None = None
    info: dict[str, str] = field(default_factory=dict)


class RpcError(Exception):
    """An operation failed with one or more rpc-errors; raise it from any layer below NETCONF."""

    def __init__(self, *errors: ErrorInfo) -> None:
        super().__init__("; ".join(e.message for e in errors))
        self.errors = list(errors)

    @classmethod
    def of(
        cls,
        tag: str,
        message: str,
        path: str | None = None,
        type: str = "application",
        app_tag: str | None = None,
        **info: str,
    ) -> RpcError:
        """A single-error RpcError."""
        return cls(ErrorInfo(tag, message, path, type, app_tag, dict(info)))
