"""What observers of the datastores are given, and how they are told of a change."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from lxml import etree

from nf.tree import EntryKey

log = logging.getLogger("nf.datastore")

Images = dict[EntryKey, etree._Element | None]
Edits = list[tuple[str, str]]
# on_commit(config, touched entries or None for "everything may have changed")
CommitHook = Callable[[dict[str, Any], set[EntryKey] | None], None]
# on_change(session-id, edits, before-images, after-images); the after-images are the live
# entries of running: read them during the call, never keep or modify them
ChangeHook = Callable[[int, Edits, Images, Images], None]


def notify(hooks: list, *args: Any) -> None:
    """Tell observers about a change that is already made: a failing one is logged, the
    others still run, and the commit stands."""
    for hook in hooks:
        try:
            hook(*args)
        except Exception:
            log.exception("commit observer %r failed", hook)
