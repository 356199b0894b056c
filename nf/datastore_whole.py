"""Whole-config changes of the datastores: validate, copy-config, delete-config, and putting
back a config that was running before (confirmed-commit rollback)."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

from lxml import etree

from nf import persist
from nf.datastore_files import empty
from nf.edit import WriteCheck, edit_tree, elements
from nf.errors import OperationFailed
from nf.hooks import ChangeHook, CommitHook, Edits, Images, notify
from nf.journal import Journal
from nf.schema import Schema
from nf.tree import Tree, prune_root
from nf.validate import validate


class WholeConfig:
    """The whole-config part of nf.datastore.Datastores, which provides ``tree``,
    ``check_writable``, ``_validate_all``, ``_full_dict``, ``_store_candidate_full`` and
    ``_reset_candidate``."""

    schema: Schema
    dir: Path
    running_j: Journal
    running: Tree
    candidate: Tree
    startup: etree._Element
    config: dict[str, Any]
    version: int
    candidate_owner: int | None
    on_commit: list[CommitHook]
    on_change: list[ChangeHook]
    _pending: list[tuple[etree._Element, str]]
    _cand_full: bool

    def validate_datastore(self, name: str) -> None:
        """The validate operation on a datastore."""
        self._validate_all(self.tree(name))

    def validate_config(self, config: etree._Element) -> None:
        """The validate operation on an inline <config>."""
        t = Tree(empty(), self.schema.top)
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
            t = Tree(empty(), self.schema.top)
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
        self.startup = empty()
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
        notify(self.on_commit, self.config, None)
        notify(self.on_change, sid, edits, before, after)

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
