"""The running and candidate datastores: edits, validation, commit, locks and persistence."""

from __future__ import annotations

import copy
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from lxml import etree

from nf import persist
from nf.edit import WriteCheck, apply_edit, elements
from nf.errors import RpcError
from nf.schema import Schema
from nf.validate import validate

DATASTORES = ("running", "candidate", "startup")
ROOT = "config"

CommitHook = Callable[[dict[str, Any]], None]
Edits = list[tuple[str, str]]
ChangeHook = Callable[[int, Edits], None]


def _empty() -> etree._Element:
    return etree.Element(ROOT)


def _serialize(root: etree._Element) -> bytes:
    return etree.tostring(root, encoding="utf-8", xml_declaration=True)


class Datastores:
    """running + one shared candidate (RFC 6241 :candidate), persisted under ``state_dir``."""

    def __init__(self, schema: Schema, state_dir: Path) -> None:
        self.schema = schema
        self.dir = state_dir
        self.trees: dict[str, etree._Element] = {}
        self.locks: dict[str, int] = {}
        self.lock_times: dict[str, str] = {}
        self.candidate_owner: int | None = None
        self.on_commit: list[CommitHook] = []
        self.on_change: list[ChangeHook] = []
        self.pending_edits: Edits = []
        self.config: dict[str, Any] = {}
        self._load()

    # ---- persistence -------------------------------------------------
    def _file(self, name: str) -> Path:
        return self.dir / f"{name}.xml"

    def _load(self) -> None:
        parser = etree.XMLParser(remove_blank_text=True, resolve_entities=False)
        raw = {name: persist.read(self._file(name)) for name in DATASTORES}
        for name in DATASTORES:
            self.trees[name] = etree.fromstring(raw[name], parser) if raw[name] else _empty()
        if raw["startup"] is not None:
            # :startup semantics: the device boots with the startup configuration.
            self.trees["running"] = copy.deepcopy(self.trees["startup"])
            self._store("running")
        if raw["candidate"] is None or raw["startup"] is not None:
            self.trees["candidate"] = copy.deepcopy(self.trees["running"])
        self.config = validate(self.schema, list(elements(self.trees["running"])))

    def _store(self, name: str) -> None:
        persist.atomic_write(self._file(name), _serialize(self.trees[name]))

    # ---- reading -----------------------------------------------------
    def tree(self, name: str) -> etree._Element:
        """The root element of a datastore (do not modify)."""
        if name not in self.trees:
            raise RpcError.of("invalid-value", f"unknown datastore {name!r}", type="protocol")
        return self.trees[name]

    # ---- locks -------------------------------------------------------
    def lock(self, name: str, sid: int) -> None:
        """Lock a datastore for a session (RFC 6241 7.5)."""
        self.tree(name)
        holder = self.locks.get(name)
        if holder is not None:
            raise RpcError.of(
                "lock-denied", f"{name} is locked by session {holder}", type="protocol",
                **{"session-id": str(holder)},
            )
        if name == "candidate" and self.candidate_owner not in (None, sid):
            raise RpcError.of(
                "lock-denied", "the candidate has uncommitted changes of another session",
                type="protocol", **{"session-id": str(self.candidate_owner)},
            )
        self.locks[name] = sid
        self.lock_times[name] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())

    def unlock(self, name: str, sid: int) -> None:
        """Release a lock held by ``sid``."""
        self.tree(name)
        if self.locks.get(name) != sid:
            raise RpcError.of(
                "operation-failed", f"{name} is not locked by this session", type="protocol"
            )
        del self.locks[name]
        if name == "candidate" and self.candidate_owner == sid:
            self.discard_changes(sid)

    def check_writable(self, name: str, sid: int) -> None:
        """Raise in-use when another session holds the lock of ``name``."""
        holder = self.locks.get(name)
        if holder is not None and holder != sid:
            raise RpcError.of(
                "in-use", f"{name} is locked by session {holder}", type="protocol",
                **{"session-id": str(holder)},
            )

    def release_session(self, sid: int) -> None:
        """A session ended: drop its locks, and its candidate changes if it held the lock."""
        for name in [n for n, s in self.locks.items() if s == sid]:
            del self.locks[name]
            if name == "candidate":
                self.discard_changes(sid)

    # ---- editing -----------------------------------------------------
    def edit(
        self,
        name: str,
        config: etree._Element,
        sid: int,
        default_op: str = "merge",
        test_option: str = "test-then-set",
        error_option: str = "stop-on-error",
        check: WriteCheck | None = None,
    ) -> None:
        """edit-config on ``name``; running is edited through an implicit commit.

        ``check`` (access control) is asked about every node the edit writes.
        """
        self.tree(name)
        self.check_writable(name, sid)
        if name == "running":
            self.check_writable("candidate", sid)
        work = copy.deepcopy(self.trees[name])
        changed: Edits = []
        if error_option == "continue-on-error":
            errors: list = []
            for el in elements(config):
                one = etree.Element("config")
                one.append(copy.deepcopy(el))
                try:
                    changed += apply_edit(self.schema.top, work, one, default_op, check)
                except RpcError as e:
                    errors.extend(e.errors)
            if errors:
                raise RpcError(*errors)
        else:
            changed = apply_edit(self.schema.top, work, config, default_op, check)
        checked = None
        if test_option in ("test-then-set", "test-only"):
            checked = validate(self.schema, list(elements(work)))
        if test_option == "test-only" or not changed:
            return
        if name == "running":
            self._install(work, checked if checked is not None else self._validated(work),
                          sid, changed)
            self.trees["candidate"] = copy.deepcopy(work)
            self._store("candidate")
        else:
            self.trees["candidate"] = work
            self.candidate_owner = sid
            self.pending_edits += changed
            self._store("candidate")

    def _validated(self, tree: etree._Element) -> dict[str, Any]:
        return validate(self.schema, list(elements(tree)))

    def validate_datastore(self, name: str) -> None:
        """The validate operation on a datastore."""
        self._validated(self.tree(name))

    def validate_config(self, config: etree._Element) -> None:
        """The validate operation on an inline <config>."""
        work = _empty()
        apply_edit(self.schema.top, work, config, "merge")
        self._validated(work)

    # ---- copy / delete ---------------------------------------------
    def copy_config(self, target: str, sid: int, source: str | None = None,
                    config: etree._Element | None = None,
                    check: WriteCheck | None = None) -> None:
        """copy-config: replace ``target`` by a datastore or an inline <config>."""
        self.tree(target)
        self.check_writable(target, sid)
        if source is not None:
            new = copy.deepcopy(self.tree(source))
        else:
            new = _empty()
            apply_edit(self.schema.top, new, config, "merge")
        if check is not None:
            for old in elements(self.trees[target]):
                check("delete", old, True)
            for el in elements(new):
                check("create", el, True)
        checked = self._validated(new)
        if target == "running":
            self._install(new, checked, sid, [("/", "replace")])
        else:
            self.trees[target] = new
            self._store(target)
            if target == "candidate":
                self.candidate_owner = sid

    def delete_config(self, target: str, sid: int) -> None:
        """delete-config: only startup can be deleted (RFC 6241 7.4)."""
        if target != "startup":
            raise RpcError.of(
                "operation-failed", f"the {target} datastore cannot be deleted", type="protocol"
            )
        self.check_writable(target, sid)
        self.trees["startup"] = _empty()
        self._file("startup").unlink(missing_ok=True)

    # ---- commit ------------------------------------------------------
    def commit(self, sid: int) -> None:
        """Copy the candidate to running after validating it (RFC 6241 8.3.4.1)."""
        self.check_writable("running", sid)
        cand = self.trees["candidate"]
        checked = self._validated(cand)
        self._install(copy.deepcopy(cand), checked, sid, self.pending_edits or [("/", "replace")])
        self.candidate_owner = None
        self.pending_edits = []

    def _install(self, tree: etree._Element, checked: dict[str, Any], sid: int,
                 edits: Edits) -> None:
        self.trees["running"] = tree
        self._store("running")
        self.config = checked
        for hook in self.on_commit:
            hook(checked)
        for change in self.on_change:
            change(sid, edits)

    def restore(self, tree: etree._Element) -> None:
        """Put back a config that was running before (confirmed-commit rollback)."""
        self._install(copy.deepcopy(tree), self._validated(tree), 0, [("/", "replace")])
        self.trees["candidate"] = copy.deepcopy(tree)
        self.candidate_owner = None
        self.pending_edits = []
        self._store("candidate")

    def discard_changes(self, sid: int) -> None:
        """Reset the candidate to running."""
        self.check_writable("candidate", sid)
        self.trees["candidate"] = copy.deepcopy(self.trees["running"])
        self.candidate_owner = None
        self.pending_edits = []
        self._store("candidate")
