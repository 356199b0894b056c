"""What `ipsec-nf check` finds in a file: the errors (as the server's rpc-errors, with the
line in the file) or the effective config and what the backend would load."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from nf.effective import EffectiveConfig
from nf.errors import ErrorInfo

HIDDEN = "<hidden>"


@dataclass(frozen=True)
class Problem:
    """One error found in the file: an rpc-error as the server would answer it, with the
    line of the node in the file when known (XML)."""

    path: str | None
    message: str
    tag: str
    app_tag: str | None = None
    line: int | None = None

    @classmethod
    def of(cls, info: ErrorInfo, line: int | None = None) -> Problem:
        """From the rpc-error the server would send."""
        return cls(info.path, info.message, info.tag, info.app_tag, line)

    def as_dict(self) -> dict[str, Any]:
        """JSON view (the rpc-error's field names)."""
        return {"error-path": self.path, "error-message": self.message,
                "error-tag": self.tag, "error-app-tag": self.app_tag, "line": self.line}


@dataclass
class Result:
    """What checking one file found: the errors, or the effective config and what the
    backend would load."""

    backend: str
    errors: list[Problem] = field(default_factory=list)
    complete: bool = True  # False: an error could not be set aside, more may be hidden
    effective: EffectiveConfig | None = None
    loads: dict[str, dict[str, Any]] = field(default_factory=dict)  # kind -> name -> payload
