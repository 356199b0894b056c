"""The running, candidate and startup datastores: edits, validation, commit, locks, persistence.

Edits happen in place inside transactions (nf.tree) and are validated, persisted (nf.journal)
and announced per entry, so a commit costs what it changes, not what is configured.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

from lxml import etree

from nf.checked import Checked
from nf.checks import Check, CheckRuns
from nf.configdict import keyed, merge
from nf.consistency import CHECKS as CONSISTENCY_CHECKS
from nf.datastore_files import BOOT_ID_FILE, BOOT_ID_PATH, CONFIRMED_BACKUP, Persisted, boot_id
from nf.datastore_whole import WholeConfig
from nf.edit import WriteCheck, check_unique, edit_tree, elements, scoped
from nf.errors import InvalidValue, OperationFailed, RpcError
from nf.gc_pause import paused
from nf.hooks import ChangeHook, CommitHook, Edits, Images, notify
from nf.journal import Journal
from nf.locks import Locks
from nf.promote import Changes, promote
from nf.records import record, units
from nf.schema import Schema
from nf.templates import resolve
from nf.tree import EntryKey, Tree, Txn, rollback_all, touched_by
from nf.validate import validate, validate_slice

log = logging.getLogger(__name__)
DATASTORES = ("running", "candidate", "startup")
NC = "urn:ietf:params:xml:ns:netconf:base:1.0"
# what other modules may import from here
__all__ = ["BOOT_ID_FILE", "BOOT_ID_PATH", "CONFIRMED_BACKUP", "DATASTORES", "ChangeHook",
           "CommitHook", "Datastores", "Edits", "Images", "boot_id"]


class Datastores(Locks, Persisted, WholeConfig):
    """running + one shared candidate (RFC 6241 :candidate) + startup, under ``state_dir``.

    The candidate is kept as "running plus pending edits" (persisted as a small log) until it
    is replaced wholesale (copy-config, rollback) or running changes under it; then it is
    stored whole.
    """

    def __init__(self, schema: Schema, state_dir: Path) -> None:
        self.schema = schema
        self.dir = state_dir
        state_dir.mkdir(parents=True, exist_ok=True)
        self.locks: dict[str, int] = {}
        self.lock_times: dict[str, str] = {}
        self.candidate_owner: int | None = None
        self.on_commit: list[CommitHook] = []
        self.on_change: list[ChangeHook] = []
        # values that contradict each other once templates are resolved (nf.consistency), and
        # what the backend cannot do (nf.checks, added by the composition root), run after
        # libyang at validate/edit/commit
        self.checks: list[Check] = list(CONSISTENCY_CHECKS)
        self._check_runs = CheckRuns(resolve)  # (a commit of what an edit checked: nf.checks)
        self.pending_edits: Edits = []
        self.version = 0
        self._pending: list[tuple[etree._Element, str]] = []
        self._cand_full = False
        # what the checks at edit-config found valid in the candidate, so that the commit
        # does not validate the same entries again: None unless every pending edit was checked
        self._cand_checked: Checked | None = Checked()
        # the entries the pending edits touched: what the commit moves into running
        self._changes = Changes()
        self.running_j = Journal(state_dir, "running")
        # the candidate is scratch space: its records survive a restart of the server but are
        # not fsynced (its clear at commit never was); running and the history are
        self.cand_j = Journal(state_dir, "candidate", durable=False)
        self._load()

    # ---- reading -----------------------------------------------------
    def tree(self, name: str) -> etree._Element:
        """The root element of a datastore (do not modify)."""
        if name == "running":
            return self.running.root
        if name == "candidate":
            return self.candidate.root
        if name == "startup":
            return self.startup
        raise InvalidValue(f"unknown datastore {name!r}", type="protocol")

    # ---- editing -----------------------------------------------------
    def _apply(self, tree: Tree, config: etree._Element, default_op: str, error_option: str,
               check: WriteCheck | None) -> tuple[list[Txn], Edits, list, list]:
        """Edit ``tree`` in place; on error everything is undone, except with
        continue-on-error, where the entries that failed are undone and their errors returned."""
        if error_option != "continue-on-error":
            txn = tree.begin()
            try:
                return [txn], edit_tree(txn, config, default_op, check), [], [config]
            except RpcError:
                txn.rollback()
                raise
        check_unique(config, self.schema.top)  # before the edit is cut into entries
        txns, edits, errors, applied = [], [], [], []
        for one in units(config, split=default_op != "replace"):
            txn = tree.begin()
            try:
                edits += edit_tree(txn, one, default_op, check)
                txns.append(txn)
                applied.append(one)
            except RpcError as e:
                txn.rollback()
                errors.extend(e.errors)
        return txns, edits, errors, applied

    @paused
    def edit(self, name: str, config: etree._Element, sid: int, default_op: str = "merge",
             test_option: str = "test-then-set", error_option: str = "stop-on-error",
             check: WriteCheck | None = None) -> None:
        """edit-config on ``name``; running is edited through an implicit commit.

        ``check`` (access control) is asked about every node the edit writes.
        """
        if name not in ("running", "candidate"):
            self.tree(name)
            raise InvalidValue(f"{name} cannot be edited", type="protocol")
        self.check_writable(name, sid)
        if name == "running":
            self.check_writable("candidate", sid)
        tree = self.running if name == "running" else self.candidate
        txns, edits, errors, applied = self._apply(tree, config, default_op, error_option,
                                                   check)
        touched = touched_by(txns)
        try:
            checked = None
            if test_option in ("test-then-set", "test-only") or name == "running":
                checked = self._check(tree, touched)
            if test_option == "test-only":
                raise _Undo()
        except (RpcError, _Undo) as e:
            rollback_all(txns)
            if isinstance(e, _Undo):
                return
            raise
        if edits:
            self._keep(name, [(c, default_op) for c in applied], sid, edits, checked, touched,
                       txns)
        if errors:
            raise RpcError(*errors)

    @paused
    def edit_batch(self, name: str, parts: list[tuple[etree._Element, str]], sid: int,
                   check: WriteCheck | None = None) -> None:
        """Several edit-config payloads ``(config, default-operation)``, applied in order as
        one edit of ``name`` (a gNMI SetRequest: its deletes, replaces and updates): validated
        together and kept, recorded and announced once, or refused whole."""
        if name not in ("running", "candidate"):
            raise InvalidValue(f"{name} cannot be edited", type="protocol")
        self.check_writable(name, sid)
        if name == "running":
            self.check_writable("candidate", sid)
        tree = self.running if name == "running" else self.candidate
        txn = tree.begin()
        edits: Edits = []
        try:
            for config, default_op in parts:
                edits += edit_tree(txn, config, default_op, check)
            touched = touched_by([txn])
            checked = self._check(tree, touched)
        except RpcError:
            txn.rollback()
            raise
        if edits:
            self._keep(name, list(parts), sid, edits, checked, touched, [txn])

    def _keep(self, name: str, applied: list[tuple[etree._Element, str]], sid: int,
              edits: Edits, checked: Any, touched: set[EntryKey], txns: list[Txn]) -> None:
        """Persist and announce an accepted edit (undone if it cannot be stored)."""
        # stored on their own, the edits keep the prefixes their values use (yang:key)
        applied = [(scoped(c), op) for c, op in applied]
        if name == "running":
            if self._pending and not self._cand_full:
                # before running moves: the dirty candidate must no longer depend on it
                self._store_candidate_full()
            self._durably(lambda: self.running_j.append(record(applied)), txns)
            self._after_running_change(checked, touched, sid, edits, txns)
            for config, default_op in applied:
                self._follow_running(config, default_op)
        else:
            self.candidate_owner = sid
            self.pending_edits += edits
            if self._cand_full:
                self._store_candidate_full()
            else:
                self._durably(lambda: self.cand_j.append(record(applied)), txns)
                self._pending += applied  # scoped()'s copies, no one else's: kept as they are
                if self._cand_checked is not None:
                    self._cand_checked = self._cand_checked.fold(checked, touched)
                self._changes.fold(txns)

    def _durably(self, store: Callable[[], None], txns: list[Txn]) -> None:
        """Store a change; if the disk refuses, undo it in memory too and say so."""
        try:
            store()
        except OSError as e:
            rollback_all(txns)
            raise OperationFailed(f"the configuration could not be stored: {e.strerror}") from None

    def _compact(self) -> None:
        """Fold the running log into a new base; a failure is logged (the log stays valid)."""
        try:
            self.running_j.write_base(self.running.root)
        except OSError as e:
            log.error("cannot compact the running journal: %s", e)

    def _check(self, tree: Tree, touched: set[EntryKey]) -> tuple[dict[str, Any], bool]:
        """Validate what changed: (libyang dict, is it the whole config?)."""
        sliced = validate_slice(self.schema, tree, touched)
        if sliced is not None:
            self._run_checks(sliced)
            return sliced, False
        return self._validate_all(tree.root), True

    def _checked_at_edit(self, touched: set[EntryKey]) -> tuple[dict[str, Any], bool] | None:
        """At commit: libyang's dict of what changed as the checks at edit-config found it
        (running has not moved under the candidate: it would be stored whole), or None when
        an edit was not checked (test-option set, a restart) or the entries differ.

        libyang's validation is a function of the data alone, so it is not run again; the
        injected checks are (they may look beyond the config: the gateway's CA and its CRL).
        """
        done = self._cand_checked
        if done is None or done.data is None or done.touched != touched:
            return None
        data = done.listed()
        self._run_checks(data)
        return data, done.whole

    def _run_checks(self, data: dict[str, Any]) -> None:
        """The injected checks on the effective config of validated data (a slice holds the
        changed VPNs with every template, so only those VPNs are checked)."""
        if self.checks:
            self._check_runs.run(self.checks, data)

    def _validate_all(self, root: etree._Element) -> dict[str, Any]:
        """libyang validation of a whole config, then the injected checks."""
        data = validate(self.schema, list(elements(root)))
        self._run_checks(data)
        return data

    def _follow_running(self, config: etree._Element, default_op: str) -> None:
        """Running changed directly: a clean candidate follows it, a dirty one is kept whole."""
        if self._pending or self._cand_full:
            if not self._cand_full:
                self._store_candidate_full()
            return
        txn = self.candidate.begin()
        try:
            edit_tree(txn, config, default_op, trusted=True)
        except RpcError:
            txn.rollback()
            self.candidate = Tree(copy.deepcopy(self.running.root), self.schema.top)

    def _after_running_change(self, checked: tuple[dict[str, Any], bool],
                              touched: set[EntryKey], sid: int, edits: Edits,
                              txns: list[Txn]) -> None:
        data, whole = checked
        if whole:
            self.config = keyed(data)
        else:
            merge(self.config, data, touched)
        if self.running_j.should_compact():
            self._compact()
        self.version += 1
        before: Images = {}
        for t in txns:
            for k, v in t.before.items():
                before.setdefault(k, v)
        # the entries as they are now, not copies: observers run at once and must not keep them
        after = {k: self.running.lookup(k) for k in before}
        notify(self.on_commit, self.config, None if whole else touched)
        notify(self.on_change, sid, edits, before, after)

    # ---- commit ------------------------------------------------------
    @paused
    def commit(self, sid: int) -> None:
        """Copy the candidate to running after validating it (RFC 6241 8.3.4.1)."""
        self.check_writable("running", sid)
        edits = self.pending_edits or [("/", "replace")]
        if not self._cand_full and self._pending:
            txn = self.running.begin()  # one transaction: its images span all the edits
            txns: list[Txn] = [txn]
            try:
                # the candidate's changed entries, not the edits again (nf.promote)
                touched = promote(txn, self.candidate, self._changes)
                if touched is None:
                    for config, dop in self._pending:
                        edit_tree(txn, config, dop, trusted=True)
                    touched = touched_by(txns)
                checked = self._checked_at_edit(touched) or self._check(self.running, touched)
            except RpcError:
                rollback_all(txns)
                self._validate_all(self.candidate.root)  # raises if invalid
                self._replace_running(copy.deepcopy(self.candidate.root), sid, edits)
            else:
                self._durably(lambda: self.running_j.append(record(self._pending)), txns)
                self._after_running_change(checked, touched, sid, edits, txns)
        elif self._cand_full:
            self._validate_all(self.candidate.root)
            self._replace_running(copy.deepcopy(self.candidate.root), sid, edits)
        # running now equals the candidate: keep its tree (no copy), forget the pending state
        self._cand_full, self._pending, self.pending_edits = False, [], []
        self._cand_checked, self._changes = Checked(), Changes()
        self.candidate_owner = None
        self.cand_j.clear()

    def discard_changes(self, sid: int) -> None:
        """Reset the candidate to running."""
        self.check_writable("candidate", sid)
        self._reset_candidate()


class _Undo(Exception):
    """test-only: the edit was checked, now take it back."""
