"""Confirmed commit (RFC 6241 section 8.4, :confirmed-commit:1.1).

A confirmed commit installs the candidate at once but keeps the previous running config; unless
a confirming commit arrives before the timeout, the previous config is put back (and with it the
tunnels, since installing a config drives the southbound).
"""

from __future__ import annotations

import asyncio
import copy
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from lxml import etree

from nf import persist as files
from nf.datastore import Datastores
from nf.errors import InvalidValue, LockDenied, OperationFailed

log = logging.getLogger(__name__)
DEFAULT_TIMEOUT = 600


class Timer(Protocol):
    """What a scheduled call returns: something that can be cancelled."""

    def cancel(self) -> None:
        """Do not run the call."""


Schedule = Callable[[float, Callable[[], None]], Timer]


def loop_schedule(delay: float, fn: Callable[[], None]) -> Timer:
    """Run ``fn`` after ``delay`` seconds on the running asyncio loop."""
    return asyncio.get_running_loop().call_later(delay, fn)


@dataclass
class Pending:
    """A confirmed commit waiting for its confirmation."""

    backup: etree._Element
    session_id: int
    persist: str | None
    timer: Timer | None = None


class ConfirmedCommits:
    """Tracks the one pending confirmed commit of a server."""

    def __init__(self, ds: Datastores, schedule: Schedule = loop_schedule) -> None:
        """``schedule(delay, fn)`` runs the confirm-timeout (the event loop by default; tests
        give a clock of their own)."""
        self.ds = ds
        self.schedule = schedule
        self.pending: Pending | None = None
        ds.lock_guard = self._guard_lock
        self.on_event: list[Callable[[str, int, str | None], None]] = []
        self.backup_path = ds.dir / "confirmed-backup.xml"
        raw = files.read(self.backup_path)
        if raw is not None:
            # the server stopped while a confirmed commit was pending: that ends its session,
            # so the commit is rolled back (RFC 6241 8.4)
            log.warning("unconfirmed commit found at start: rolling back")
            ds.restore(etree.fromstring(raw, etree.XMLParser(huge_tree=True,
                                                             resolve_entities=False)))
            self._drop_backup()

    def _guard_lock(self, sid: int) -> None:
        """RFC 6241 7.5: no lock on running while another session's confirmed commit runs."""
        p = self.pending
        if p is not None and (p.persist is not None or p.session_id != sid):
            raise LockDenied("a confirmed commit is pending",
                             **{"session-id": str(p.session_id)})

    def _check_owner(self, sid: int, persist_id: str | None) -> None:
        p = self.pending
        assert p is not None
        if p.persist is not None:
            if persist_id != p.persist:
                raise InvalidValue("persist-id does not match the pending confirmed commit",
                                   type="protocol", **{"bad-element": "persist-id"})
        elif persist_id is not None:
            raise InvalidValue("no persistent confirmed commit is pending",
                               type="protocol", **{"bad-element": "persist-id"})
        elif sid != p.session_id:
            raise OperationFailed("another session's confirmed commit is pending",
                                  type="protocol", **{"session-id": str(p.session_id)})

    def commit(self, sid: int, confirmed: bool, timeout: int = DEFAULT_TIMEOUT,
               persist: str | None = None, persist_id: str | None = None) -> None:
        """A <commit>, confirmed or not; confirms or extends a pending one."""
        if self.pending is not None:
            self._check_owner(sid, persist_id)
        elif persist_id is not None:
            raise InvalidValue("no confirmed commit is pending",
                               type="protocol", **{"bad-element": "persist-id"})
        backup = None
        if confirmed and self.pending is None:  # the only commit that needs the old config
            backup = copy.deepcopy(self.ds.tree("running"))
            files.atomic_write(self.backup_path, etree.tostring(backup))  # survives a crash
        try:
            self.ds.commit(sid)
        except Exception:
            if backup is not None:
                self._drop_backup()
            raise
        if not confirmed:
            if self.pending is not None:
                self._stop_timer()
                self.pending = None
                self._drop_backup()
                self._emit("complete", sid)
            return
        if self.pending is None:
            assert backup is not None
            self.pending = Pending(backup, sid, persist)
            self._emit("start", sid, timeout)
        else:
            self._stop_timer()
            self.pending.persist = persist
            self.pending.session_id = sid
            self._emit("extend", sid, timeout)
        self.pending.timer = self.schedule(timeout, self._timeout)

    def cancel(self, sid: int, persist_id: str | None = None) -> None:
        """<cancel-commit>: roll back the pending confirmed commit now."""
        if self.pending is None:
            raise OperationFailed("no confirmed commit is pending", type="protocol")
        self._check_owner(sid, persist_id)
        self._rollback("cancel", sid)

    def session_ended(self, sid: int) -> None:
        """A non-persistent confirmed commit is rolled back when its session ends."""
        p = self.pending
        if p is not None and p.persist is None and p.session_id == sid:
            self._rollback("cancel", sid)

    def _timeout(self) -> None:
        log.warning("confirmed commit not confirmed in time: rolling back")
        self._rollback("timeout", 0)

    def _rollback(self, reason: str, sid: int) -> None:
        p = self.pending
        assert p is not None
        self._stop_timer()
        self.pending = None
        self.ds.restore(p.backup)
        self._drop_backup()
        self._emit(reason, sid)

    def _drop_backup(self) -> None:
        self.backup_path.unlink(missing_ok=True)

    def _stop_timer(self) -> None:
        if self.pending is not None and self.pending.timer is not None:
            self.pending.timer.cancel()
            self.pending.timer = None

    def _emit(self, event: str, sid: int, timeout: int | None = None) -> None:
        for cb in self.on_event:
            try:
                cb(event, sid, str(timeout) if timeout is not None else None)
            except Exception:
                log.exception("confirmed-commit listener failed")
