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

from nf import persist
from nf.checks import Check, run_checks
from nf.configdict import keyed, merge
from nf.consistency import CHECKS as CONSISTENCY_CHECKS
from nf.edit import WriteCheck, check_unique, edit_tree, elements, scoped
from nf.errors import InvalidValue, OperationFailed, RpcError
from nf.journal import Journal
from nf.locks import Locks
from nf.records import record, replay, units
from nf.schema import Schema
from nf.templates import resolve
from nf.tree import EntryKey, Tree, Txn, prune_root, rollback_all, touched_by
from nf.validate import BULK, validate, validate_slice

log = logging.getLogger(__name__)
DATASTORES = ("running", "candidate", "startup")
ROOT = "config"
NC = "urn:ietf:params:xml:ns:netconf:base:1.0"

Images = dict[EntryKey, etree._Element | None]
Edits = list[tuple[str, str]]
# on_commit(config, touched entries or None for "everything may have changed")
CommitHook = Callable[[dict[str, Any], set[EntryKey] | None], None]
# on_change(session-id, edits, before-images, after-images); the after-images are the live
# entries of running: read them during the call, never keep or modify them
ChangeHook = Callable[[int, Edits, Images, Images], None]


BOOT_ID_FILE = "running.boot-id"  # the host boot during which running was last loaded
CONFIRMED_BACKUP = "confirmed-backup.xml"  # nf.confirmed's: running before a confirmed commit
BOOT_ID_PATH = Path("/proc/sys/kernel/random/boot_id")


def _empty() -> etree._Element:
    return etree.Element(ROOT)


def boot_id() -> str | None:
    """The kernel's id of the current boot of the host, or None if it cannot be read."""
    try:
        return BOOT_ID_PATH.read_text().strip() or None
    except OSError:
        return None


class Datastores(Locks):
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
        self.pending_edits: Edits = []
        self.version = 0
        self._pending: list[tuple[etree._Element, str]] = []
        self._cand_full = False
        # what the checks at edit-config found valid in the candidate, so that the commit
        # does not validate the same entries again: None unless every pending edit was checked
        self._cand_checked: _Checked | None = _Checked()
        self.running_j = Journal(state_dir, "running")
        # the candidate is scratch space: its records survive a restart of the server but are
        # not fsynced (its clear at commit never was); running and the history are
        self.cand_j = Journal(state_dir, "candidate", durable=False)
        self._load()

    # ---- persistence -------------------------------------------------
    def _load(self) -> None:
        """Load the datastores at start-up.

        As on sysrepo-based devices, running survives a restart of the server within one
        boot of the host; the first start after the host booted (its boot id differs from
        the one stored beside running, or none is stored) loads running from startup, when
        there is one.
        """
        startup = persist.read(self.dir / "startup.xml")
        parser = etree.XMLParser(remove_blank_text=True, resolve_entities=False, huge_tree=True)
        self.startup = etree.fromstring(startup, parser) if startup else _empty()
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
            self.running = Tree(base if base is not None else _empty(), self.schema.top)
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
            self._cand_checked = None if pending else _Checked()  # not checked by this process
            try:
                for rec in pending:
                    replay(self.candidate.begin(), rec)
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
        self._cand_checked = None

    def _reset_candidate(self) -> None:
        self.candidate = Tree(copy.deepcopy(self.running.root), self.schema.top)
        self._cand_full, self._pending, self.pending_edits = False, [], []
        self._cand_checked = _Checked()
        self.candidate_owner = None
        self.cand_j.clear()

    @property
    def candidate_dirty(self) -> bool:
        """Does the candidate hold changes not committed yet?"""
        return bool(self._pending) or self._cand_full

    def _full_dict(self, root: etree._Element) -> dict[str, Any]:
        return keyed(validate(self.schema, list(elements(root))))

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
                self._pending += [(copy.deepcopy(c), op) for c, op in applied]
                if self._cand_checked is not None:
                    self._cand_checked = self._cand_checked.fold(checked, touched)

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
            run_checks(self.checks, resolve(data), data)

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
        _notify(self.on_commit, self.config, None if whole else touched)
        _notify(self.on_change, sid, edits, before, after)

    def validate_datastore(self, name: str) -> None:
        """The validate operation on a datastore."""
        self._validate_all(self.tree(name))

    def validate_config(self, config: etree._Element) -> None:
        """The validate operation on an inline <config>."""
        t = Tree(_empty(), self.schema.top)
        edit_tree(t.begin(), config, "merge")
        self._validate_all(t.root)

    # ---- whole-config changes ----------------------------------------
    def copy_config(self, target: str, sid: int, source: str | None = None,
                    config: etree._Element | None = None,
                    check: WriteCheck | None = None) -> None:
        """copy-config: replace ``target`` by a datastore or an inline <config>."""
        self.tree(target)
        self.check_writable(target, sid)
        if source is not None:
            new = copy.deepcopy(self.tree(source))
        else:
            t = Tree(_empty(), self.schema.top)
            edit_tree(t.begin(), config, "merge")
            new = t.root
        if check is not None:
            for old in elements(self.tree(target)):
                check("delete", old, True)
            for el in elements(new):
                check("create", el, True)
        if target == "running":
            self._validate_all(new)
        else:
            validate(self.schema, list(elements(new)))
        if target == "running":
            self._replace_running(new, sid, [("/", "replace")])
            self._candidate_after_replace()
        elif target == "candidate":
            self.candidate = Tree(new, self.schema.top)
            self.candidate_owner = sid
            self._store_candidate_full()
        else:
            self.startup = new
            persist.atomic_write(self.dir / "startup.xml", etree.tostring(new))

    def delete_config(self, target: str, sid: int) -> None:
        """delete-config: only startup can be deleted (RFC 6241 7.4)."""
        if target != "startup":
            raise OperationFailed(f"the {target} datastore cannot be deleted",
                                  type="protocol")
        self.check_writable(target, sid)
        self.startup = _empty()
        (self.dir / "startup.xml").unlink(missing_ok=True)

    def _replace_running(self, new: etree._Element, sid: int, edits: Edits) -> None:
        prune_root(new, self.schema.top)  # before it is stored (a config of an earlier version)
        if self._pending and not self._cand_full:
            self._store_candidate_full()  # before running's files change (crash safety)
        old = self.running
        before: Images = {(t.tag, None, ()): copy.deepcopy(t) for t in elements(old.root)}
        self.running_j.write_base(new)
        self.running = Tree(new, self.schema.top)
        self.config = self._full_dict(new)
        self.version += 1
        after: Images = {(t.tag, None, ()): t for t in elements(new)}  # live: read at once
        for k in before:
            after.setdefault(k, None)
        for k in after:
            before.setdefault(k, None)
        _notify(self.on_commit, self.config, None)
        _notify(self.on_change, sid, edits, before, after)

    # ---- commit ------------------------------------------------------
    def commit(self, sid: int) -> None:
        """Copy the candidate to running after validating it (RFC 6241 8.3.4.1)."""
        self.check_writable("running", sid)
        edits = self.pending_edits or [("/", "replace")]
        if not self._cand_full and self._pending:
            txn = self.running.begin()  # one transaction: its images span all the edits
            txns: list[Txn] = [txn]
            try:
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
        self._cand_checked = _Checked()
        self.candidate_owner = None
        self.cand_j.clear()

    def restore(self, tree: etree._Element) -> None:
        """Put back a config that was running before (confirmed-commit rollback)."""
        validate(self.schema, list(elements(tree)))
        self._replace_running(copy.deepcopy(tree), 0, [("/", "replace")])
        self._candidate_after_replace()

    def _candidate_after_replace(self) -> None:
        """Running was replaced: a clean candidate follows it, a dirty one is kept whole."""
        if self._pending or self._cand_full:
            if not self._cand_full:
                self._store_candidate_full()
        else:
            self._reset_candidate()

    def discard_changes(self, sid: int) -> None:
        """Reset the candidate to running."""
        self.check_writable("candidate", sid)
        self._reset_candidate()


def _notify(hooks: list, *args: Any) -> None:
    """Tell observers about a change that is already made: a failing one is logged, the
    others still run, and the commit stands."""
    for hook in hooks:
        try:
            hook(*args)
        except Exception:
            log.exception("commit observer %r failed", hook)


class _Checked:
    """The checked dicts of the candidate's edits since it last equalled running, folded into
    one (the bulk lists keyed by name, as nf.configdict keeps running's): the whole
    candidate's once an edit was validated whole, else the slice of the entries touched."""

    def __init__(self) -> None:
        self.data: dict[str, Any] | None = None
        self.whole = False
        self.touched: set[EntryKey] = set()

    def fold(self, checked: tuple[dict[str, Any], bool] | None,
             touched: set[EntryKey]) -> _Checked | None:
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


class _Undo(Exception):
    """test-only: the edit was checked, now take it back."""
