"""What the checks at edit-config found valid in the candidate, kept for its commit."""

from __future__ import annotations

from typing import Any

from nf.configdict import keyed, merge
from nf.tree import EntryKey
from nf.validate import BULK


class Checked:
    """The checked dicts of the candidate's edits since it last equalled running, folded into
    one (the bulk lists keyed by name, as nf.configdict keeps running's): the whole
    candidate's once an edit was validated whole, else the slice of the entries touched."""

    def __init__(self) -> None:
        self.data: dict[str, Any] | None = None
        self.whole = False
        self.touched: set[EntryKey] = set()

    def fold(self, checked: tuple[dict[str, Any], bool] | None,
             touched: set[EntryKey]) -> Checked | None:
        """Add an edit's check (``Datastores._check``'s result, None if it was not checked);
        None once the candidate holds an unchecked edit."""
        if checked is None:
            return None
        data, whole = checked
        if whole or self.data is None:
            self.data, self.whole = keyed(data), whole
        else:
            merge(self.data, data, touched)
        self.touched |= touched
        return self

    def listed(self) -> dict[str, Any]:
        """The folded dict in libyang's form (the bulk lists as lists), as ``_check`` gives."""
        out: dict[str, Any] = {}
        for name, top in (self.data or {}).items():
            if isinstance(top, dict):
                top = {k: list(v.values()) if k in BULK else v for k, v in top.items()}
            out[name] = top
        return out
