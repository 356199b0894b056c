"""Finding every error of a file, not only the first: libyang stops at the first error, so
the node in error (a leaf, or the list entry a missing mandatory node belongs to) is located
in the file, reported, set aside, and the rest validated again until it passes."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import libyang
from lxml import etree

from nf import paths
from nf.edit import elements
from nf.errors import ErrorInfo, RpcError, UnknownElement
from nf.schema import NAMESPACES, LyError, Schema
from nf.validate import LYVE_DATA, LYVE_REFERENCE, error_info, validate
from tools.check_result import Problem

MAX_ROUNDS = 10_000  # validations per file at most (one per error found)
_UNKNOWN = re.compile(r'Node "([^"]+)" not found as a child of')
_MANDATORY = re.compile(r'Mandatory node "([^"]+)" instance does not exist')
_DUPLICATE = re.compile(r'Duplicate instance of "([^"]+)"')
_LOCATION = re.compile(r'(Data|Schema) location "')
_NO_KEY = re.compile(r'List instance is missing its key "([^"]+)"')
_VALUE = re.compile(r'value "([^"]*)"')


def _matches(el: etree._Element, ns: str, step: paths.Step) -> bool:
    q = etree.QName(el)
    if q.localname != step.name or (q.namespace or "") != ns:
        return False
    for k, v in step.keys:
        have = el.text if k == "." else el.findtext(f"{{{ns}}}{k}")
        if have is None or (have != v and have.strip() != v):
            return False
    return True


def find_element(config: etree._Element, path: str | None) -> etree._Element | None:
    """The element of ``config`` at a data path (the first match), or None."""
    found = find_all(config, path)
    return found[0] if found else None


def find_all(config: etree._Element, path: str | None) -> list[etree._Element]:
    """Every element of ``config`` at a data path (several for duplicates)."""
    if not path:
        return []
    try:
        steps = paths.parse(path)
    except paths.PathError:
        return []
    here = [config]
    for step in steps:
        ns = NAMESPACES.get(step.module, "")
        here = [c for el in here for c in elements(el) if _matches(c, ns, step)]
        if step.position is not None:
            here = here[step.position - 1: step.position]
    return here


def _path(el: etree._Element, config: etree._Element, schema: Schema) -> str:
    return paths.instance_path(el, schema.top, base=config)


def _entry(el: etree._Element, config: etree._Element, schema: Schema) -> etree._Element | None:
    """The innermost list entry holding ``el`` (``el`` itself if it is one)."""
    entry = None
    for e, sn in paths.chain(el, schema.top, base=config):
        if sn is not None and sn.kind == "list":
            entry = e
    return entry


def _missing(config: etree._Element, steps: tuple[paths.Step, ...], schema: Schema
             ) -> Iterator[tuple[etree._Element, tuple[paths.Step, ...]]]:
    """Where the mandatory node at the schema path ``steps`` is missing: (the deepest element
    that exists, the steps below it that do not)."""
    def walk(el: etree._Element, level: paths.Level, i: int
             ) -> Iterator[tuple[etree._Element, tuple[paths.Step, ...]]]:
        step = steps[i]
        sn = paths.find(level, step.module, step.name)
        if sn is None:
            return
        kids = [c for c in elements(el) if _matches(c, sn.ns, step)]
        if i == len(steps) - 1:
            if not kids:
                yield el, steps[i:]
            return
        if kids:
            for c in kids:
                yield from walk(c, sn, i + 1)
        elif sn.kind == "container" and not sn.presence and el is not config:
            yield el, steps[i:]  # a non-presence container exists implicitly
    yield from walk(config, schema.top, 0)


def _pick(found: list[etree._Element], message: str) -> etree._Element:
    """Which of the elements at an error's path it is about: libyang's path of a list entry
    whose key is missing or bad has no key predicate, so it names every entry."""
    if _DUPLICATE.search(message):
        return found[-1]
    if m := _NO_KEY.search(message):
        return next((e for e in found if e.find(f"{{{etree.QName(e).namespace}}}{m.group(1)}")
                     is None), found[0])
    if m := _VALUE.search(message):
        return next((e for e in found if (e.text or "") == m.group(1)), found[0])
    return found[0]


@dataclass
class ErrorSearch:
    """The state of one file's search for every error."""

    schema: Schema
    config: etree._Element
    errors: list[Problem] = field(default_factory=list)
    seen_paths: set[str | None] = field(default_factory=set)

    def report(self, info: ErrorInfo, path: str | None, el: etree._Element | None) -> None:
        problem = Problem.of(dataclasses.replace(info, path=path),
                             el.sourceline if el is not None else None)
        if problem in self.errors:
            return  # e.g. a template's leaf refused for each VPN using it: said once
        if path in self.seen_paths and info.app_tag == "mandatory":
            return  # a mandatory leaf set aside for its bad value: it was said
        self.seen_paths.add(path)
        self.errors.append(problem)

    def set_aside(self, item: LyError, info: ErrorInfo) -> bool:
        """Report one libyang error and remove what it is about; False if it cannot be
        located (the search stops there)."""
        located = _LOCATION.search(item.path or "")
        if _MANDATORY.search(item.message) and located and located.group(1) == "Schema":
            return self._missing(item, info)
        found = find_all(self.config, info.path)
        if not found:
            self.report(info, info.path, None)
            return False
        el = _pick(found, item.message)
        if item.vecode == LYVE_REFERENCE and (m := _UNKNOWN.search(item.message)):
            chain = paths.chain(el, self.schema.top, base=self.config)
            sn = chain[-1][1] if chain else None
            bad = next((c for c in elements(el) if etree.QName(c).localname == m.group(1)
                        and paths.schema_of(sn, c) is None), None)
            if bad is None:
                self.report(info, info.path, el)
                return False
            self.report(info, (info.path or "") + paths.path_step(None, bad), bad)
            el.remove(bad)
            return True
        self.report(info, info.path, el)
        target = el
        parent = el.getparent()
        chain = paths.chain(el, self.schema.top, base=self.config)
        if len(chain) > 1 and chain[-2][1] is not None and chain[-2][1].kind == "list" \
                and etree.QName(el).localname in chain[-2][1].keys:
            target, parent = parent, parent.getparent()  # a key: the whole entry
        parent.remove(target)
        return True

    def _missing(self, item: LyError, info: ErrorInfo) -> bool:
        try:
            steps = paths.parse(info.path or "")
        except paths.PathError:
            steps = ()
        where = list(_missing(self.config, steps, self.schema)) if steps else []
        if not where:
            self.report(info, info.path, None)
            return False
        for el, below in where:
            entry = _entry(el, self.config, self.schema)
            self.report(info, _path(el, self.config, self.schema) + paths.build(below), el)
            if entry is None:
                return False
            # the entry is set aside whole: say every mandatory node it lacks first (a VPN
            # without either template), as libyang would one after the other
            for holder, missing in self._mandatory_missing(entry):
                name = missing[-1].name
                self.report(error_info(LyError(LYVE_DATA, f'Mandatory node "{name}" instance '
                                               "does not exist.", None, None), None),
                            _path(holder, self.config, self.schema) + paths.build(missing),
                            holder)
            entry.getparent().remove(entry)
        return True

    def _mandatory_missing(self, entry: etree._Element
                           ) -> list[tuple[etree._Element, tuple[paths.Step, ...]]]:
        """The mandatory leaves missing in a list entry (through non-presence containers,
        not into inner lists): (the deepest element that exists, the steps below it)."""
        chain = paths.chain(entry, self.schema.top, base=self.config)
        if any(sn is None for _, sn in chain):
            return []
        try:
            node = next(iter(self.schema.ctx.find_path(
                "".join(f"/{sn.module}:{sn.name}" for _, sn in chain))))
        except (libyang.LibyangError, StopIteration):
            return []
        out: list[tuple[etree._Element, tuple[paths.Step, ...]]] = []

        def walk(holder: etree._Element, here: etree._Element | None, snode: Any,
                 below: tuple[paths.Step, ...]) -> None:
            for c in snode.children():
                step = paths.Step(c.module().name(), c.name())
                kids = [] if here is None else [
                    k for k in elements(here) if etree.QName(k).localname == c.name()]
                if c.keyword() == "leaf" and c.mandatory() and not kids:
                    out.append((holder, (*below, step)))
                elif c.keyword() == "container" and not c.presence():
                    if kids:
                        walk(kids[0], kids[0], c, ())
                    else:
                        walk(holder, None, c, (*below, step))
        walk(entry, entry, node, ())
        return out

    def top_level(self) -> None:
        """Top-level elements of no module of the model: reported and set aside."""
        for el in list(elements(self.config)):
            if paths.schema_of(self.schema.top, el) is None:
                q = etree.QName(el)
                self.report(UnknownElement.item(
                    f"no top-level node {q.localname!r} in namespace {q.namespace!r} in the "
                    "model"), paths.path_step(None, el), el)
                self.config.remove(el)

    def run(self) -> dict[str, Any] | None:
        """Validate until what is left passes: its libyang dict, or None if an error could
        not be set aside."""
        self.top_level()
        for _ in range(MAX_ROUNDS):
            try:
                return validate(self.schema, list(elements(self.config)))
            except RpcError as e:
                items = list(self.schema.ctx.last_errors)
                if len(items) != len(e.errors) or not items:
                    for info in e.errors:
                        self.report(info, info.path, find_element(self.config, info.path))
                    return None
                for item, info in zip(items, e.errors, strict=True):
                    if not self.set_aside(item, info):
                        return None
        return None
