"""Loading the datastores at start-up (running kept within one boot of the host, startup
after a reboot, the candidate's pending edits replayed) and storing the candidate whole."""

from __future__ import annotations

import copy
import logging
from pathlib import Path
from typing import Any

from lxml import etree

from nf import persist
from nf.checked import Checked
from nf.configdict import keyed
from nf.edit_nodes import elements
from nf.errors import RpcError
from nf.journal import Journal
from nf.promote import Changes
from nf.records import replay
from nf.schema import Schema
from nf.tree import Tree, prune_root
from nf.validate import validate

log = logging.getLogger("nf.datastore")
ROOT = "config"
BOOT_ID_FILE = "running.boot-id"  # the host boot during which running was last loaded
CONFIRMED_BACKUP = "confirmed-backup.xml"  # nf.confirmed's: running before a confirmed commit
BOOT_ID_PATH = Path("/proc/sys/kernel/random/boot_id")


def empty() -> etree._Element:
    return etree.Element(ROOT)


def boot_id() -> str | None:
    """The kernel's id of the current boot of the host, or None if it cannot be read."""
    try:
        return BOOT_ID_PATH.read_text().strip() or None
    except OSError:
        return None


class Persisted:
    """The start-up and storage part of nf.datastore.Datastores."""

    schema: Schema
    dir: Path
    running_j: Journal
    cand_j: Journal
    running: Tree
    candidate: Tree
    startup: etree._Element
    config: dict[str, Any]
    candidate_owner: int | None
    pending_edits: list[tuple[str, str]]
    _pending: list[tuple[etree._Element, str]]
    _cand_full: bool
    _cand_checked: Checked | None
    _changes: Changes

    def _load(self) -> None:
        """Load the datastores at start-up.

        As on sysrepo-based devices, running survives a restart of the server within one
        boot of the host; the first start after the host booted (its boot id differs from
        the one stored beside running, or none is stored) loads running from startup, when
        there is one.
        """
        startup = persist.read(self.dir / "startup.xml")
        parser = etree.XMLParser(remove_blank_text=True, resolve_entities=False, huge_tree=True)
        self.startup = etree.fromstring(startup, parser) if startup else empty()
        prune_root(self.startup, self.schema.top)  # stored by an earlier version
        boot = boot_id()
        stored = persist.read(self.dir / BOOT_ID_FILE)
        rebooted = (boot is None or stored is None
                    or stored.decode(errors="replace").strip() != boot)
        self.loaded_from = "startup" if startup is not None and rebooted else "running"
        base, records = self.running_j.load()
        if self.loaded_from == "startup":
            log.info("running loaded from startup: first start since the host booted")
            self.running = Tree(copy.deepcopy(self.startup), self.schema.top)
            self.running_j.write_base(self.running.root)  # before the boot id: crash-safe
            if (self.dir / CONFIRMED_BACKUP).exists():
                # the unconfirmed commit was made on the running config startup replaces
                log.warning("a confirmed commit pending before the host rebooted is dropped: "
                            "running comes from startup")
                (self.dir / CONFIRMED_BACKUP).unlink()
        else:
            self.running = Tree(base if base is not None else empty(), self.schema.top)
            for rec in records:
                replay(self.running.begin(), rec)
            if records and self.running_j.should_compact():
                self.running_j.write_base(self.running.root)
            if startup is not None:
                log.info("running kept from before the restart (same host boot): startup "
                         "is loaded at the first start after a reboot")
            else:
                log.info("running loaded (no startup configuration)")
        if boot is not None and rebooted:
            persist.atomic_write(self.dir / BOOT_ID_FILE, boot.encode())
        self.config = self._full_dict(self.running.root)
        if self.loaded_from == "startup":
            self._reset_candidate()
            return
        cand, pending = self.cand_j.load()
        if cand is not None and cand.get("mode") == "full":
            del cand.attrib["mode"]
            self.candidate = Tree(cand, self.schema.top)
            self._cand_full = True
        else:
            self.candidate = Tree(copy.deepcopy(self.running.root), self.schema.top)
            self._cand_checked = None if pending else Checked()  # not checked by this process
            try:
                for rec in pending:
                    txn = self.candidate.begin()
                    replay(txn, rec)
                    self._changes.fold([txn])
                    self._pending += [(e[0], e.get("default-operation", "merge"))
                                      for e in etree.fromstring(rec)]
            except RpcError:  # a crash between a commit and the candidate's reset
                self._reset_candidate()

    def _store_candidate_full(self) -> None:
        self.candidate.root.set("mode", "full")
        try:
            self.cand_j.write_base(self.candidate.root)
        finally:
            del self.candidate.root.attrib["mode"]
        self._cand_full, self._pending = True, []
        self._cand_checked, self._changes = None, Changes()

    def _reset_candidate(self) -> None:
        self.candidate = Tree(copy.deepcopy(self.running.root), self.schema.top)
        self._cand_full, self._pending, self.pending_edits = False, [], []
        self._cand_checked, self._changes = Checked(), Changes()
        self.candidate_owner = None
        self.cand_j.clear()

    @property
    def candidate_dirty(self) -> bool:
        """Does the candidate hold changes not committed yet?"""
        return bool(self._pending) or self._cand_full

    def _full_dict(self, root: etree._Element) -> dict[str, Any]:
        return keyed(validate(self.schema, list(elements(root))))
