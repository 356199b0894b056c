"""`ipsec-nf check FILE`: check a configuration file offline, before it is applied.

The file is what a NETCONF client would send: XML (a ``<config>`` element as edit-config
carries it, or a top-level container such as ``<ike xmlns="urn:ipsec-nf:yang:ipsec-nf">``)
or JSON_IETF (``{"ipsec-nf:ike": {...}}``); the format is told from the content. It is
validated as the server validates a datastore (libyang: types, patterns, ranges, leafrefs,
``must``s, mandatory nodes, nf.validate's rpc-error mapping), then the templates are resolved
(nf.templates) and the backend's refusals run (tools.backends: the same checks as the
server's ``<validate>`` and ``<commit>``). A valid file prints each VPN's effective parameters
and the connections and secrets the backend would load (secrets shown as ``<hidden>``).
The file is taken as a whole configuration, as ``<copy-config>`` takes one: edit-config
operation attributes are ignored.

libyang stops at the first error it finds; to report every error, the node in error (a
leaf, or the list entry a missing mandatory node belongs to, once every mandatory leaf it
lacks is reported) is set aside and the rest is validated again, until it passes or an error
cannot be located. The backend's refusals are then looked for in what is left: a VPN set
aside is not checked against the backend.

Exit status: 0 valid, 1 errors found (each printed with its path), 2 usage error or a file
that cannot be read or parsed.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import sys
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import IO, Any

import libyang
from lxml import etree

from nf import paths
from nf.checks import run_checks
from nf.edit import elements, strip_ops
from nf.effective import EffectiveConfig
from nf.errors import ErrorInfo, RpcError, UnknownElement
from nf.schema import NAMESPACES, LyError, Schema
from nf.templates import resolve
from nf.validate import LYVE_DATA, LYVE_REFERENCE, error_info, validate
from southbound.backend import DataPlane
from southbound.vici_client import ViciEncodingError, encode_request
from tools.backends import DEFAULT_BACKEND, backend_checks, backend_kinds, dataplane

EXIT_OK, EXIT_INVALID, EXIT_USAGE = 0, 1, 2
NC = "urn:ietf:params:xml:ns:netconf:base:1.0"
HIDDEN = "<hidden>"
MAX_ROUNDS = 10_000  # validations per file at most (one per error found)
_UNKNOWN = re.compile(r'Node "([^"]+)" not found as a child of')
_MANDATORY = re.compile(r'Mandatory node "([^"]+)" instance does not exist')
_DUPLICATE = re.compile(r'Duplicate instance of "([^"]+)"')
_LOCATION = re.compile(r'(Data|Schema) location "')
_NO_KEY = re.compile(r'List instance is missing its key "([^"]+)"')
_VALUE = re.compile(r'value "([^"]*)"')


class Unreadable(Exception):
    """The file cannot be read, or is not well-formed XML or JSON, or holds no configuration
    (exit status 2)."""


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


# ---- reading the file ----------------------------------------------------------------------

def read_config(text: bytes, schema: Schema) -> tuple[etree._Element, str]:
    """The file's content as a ``<config>`` element holding the top-level containers (a copy
    without edit attributes), and its format (``xml`` or ``json``); Unreadable if it is
    neither well-formed XML nor JSON, or holds no configuration."""
    head = text.lstrip()[:1]
    if head in (b"{", b"["):
        return _from_json(text, schema), "json"
    if head == b"<":
        return _from_xml(text, schema), "xml"
    if not head:
        raise Unreadable("the file is empty")
    raise Unreadable("neither XML (a <config> element, or <ike xmlns=...>) nor JSON_IETF "
                     '({"ipsec-nf:ike": ...})')


def _from_xml(text: bytes, schema: Schema) -> etree._Element:
    parser = etree.XMLParser(resolve_entities=False, no_network=True, remove_comments=True,
                             remove_pis=True, load_dtd=False)
    try:
        root = etree.fromstring(text, parser)
    except etree.XMLSyntaxError as e:
        where = "" if "line" in (e.msg or "") else f" (line {e.lineno})"
        raise Unreadable(f"not well-formed XML: {e.msg}{where}") from None
    q = etree.QName(root)
    if (q.namespace or "", q.localname) in schema.top:
        tops = [root]
    elif q.localname == "config":
        tops = list(elements(root))
    else:
        names = ", ".join(sorted(f"<{n.name} xmlns=\"{n.ns}\">" for n in schema.top.values()))
        raise Unreadable(f"line {root.sourceline}: expected a <config> element or one of "
                         f"{names}, found <{q.localname}>")
    config = etree.Element(f"{{{NC}}}config", nsmap={"nc": NC})
    for top in tops:
        config.append(strip_ops(top))  # copies keep their line numbers
    return config


def _from_json(text: bytes, schema: Schema) -> etree._Element:
    """JSON_IETF (RFC 7951) as the XML the server parses; libyang checks it the same way."""
    try:
        data = json.loads(text)
    except UnicodeDecodeError as e:
        raise Unreadable(f"not valid JSON: {e}") from None
    except json.JSONDecodeError as e:
        raise Unreadable(f"not valid JSON: {e.msg} (line {e.lineno}, column {e.colno})") \
            from None
    if not isinstance(data, dict):
        raise Unreadable('expected a JSON object of top-level containers, e.g. '
                         '{"ipsec-nf:ike": {...}}')
    config = etree.Element(f"{{{NC}}}config", nsmap={"nc": NC})
    for key, value in data.items():
        module, sep, name = key.partition(":")
        if not sep:
            raise Unreadable(f"top-level member {key!r} needs its module name (RFC 7951), "
                             'e.g. "ipsec-nf:ike"')
        if module not in NAMESPACES:
            raise Unreadable(f"{key!r}: no module {module!r} in the model")
        _json_node(config, NAMESPACES[module], name, value, schema.top)
    return config


def _json_node(parent: etree._Element, ns: str, name: str, value: Any,
               level: paths.Level) -> None:
    sn = paths.child(level, ns, name)
    items = value if isinstance(value, list) and value != [None] else [value]
    for item in items:
        el = etree.SubElement(parent, f"{{{ns}}}{name}")
        if isinstance(item, dict):
            for key, v in item.items():
                module, sep, local = key.partition(":")
                cns = (NAMESPACES.get(module, f"urn:unknown-module:{module}") if sep else ns)
                _json_node(el, cns, local if sep else key, v, sn)
        elif item is None or item == [None]:  # type empty
            continue
        elif isinstance(item, bool):
            el.text = "true" if item else "false"
        elif isinstance(item, list | dict):
            el.text = json.dumps(item)  # not a value of any leaf: libyang says so
        else:
            el.text = str(item)


# ---- validation: every error ---------------------------------------------------------------

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
class _Search:
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


def check(text: bytes, backend: str = DEFAULT_BACKEND, schema: Schema | None = None) -> Result:
    """Check a configuration file's content for ``backend``; Unreadable if it cannot be
    parsed."""
    schema = schema or Schema()
    dp = dataplane(backend)
    config, _ = read_config(text, schema)
    search = _Search(schema, config)
    data = search.run()
    result = Result(backend, search.errors, complete=data is not None)
    if data is None:
        result.errors.sort(key=lambda p: p.line if p.line is not None else float("inf"))
        return result
    try:  # what the server refuses at validate and commit for this backend
        run_checks(backend_checks(dp), resolve(data), data)
    except RpcError as e:
        for info in e.errors:
            search.report(info, info.path, find_element(config, info.path))
    if result.errors:
        # in the file's order where lines are known (XML), else in the order found
        result.errors.sort(key=lambda p: p.line if p.line is not None else float("inf"))
        return result
    result.effective = resolve(data)
    result.loads, problems = loads(result.effective, dp)
    result.errors.extend(problems)
    return result


def _masked(value: Any) -> Any:
    """A payload for printing: bytes (key material: SecretBytes) as <hidden>."""
    if isinstance(value, bytes):
        return HIDDEN
    if isinstance(value, Mapping):
        return {k: _masked(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_masked(v) for v in value]
    return value


def loads(effective: EffectiveConfig, dp: DataPlane
          ) -> tuple[dict[str, dict[str, Any]], list[Problem]]:
    """What the backend would load, per kind and name (payloads masked), and the entries
    whose payload cannot be built or sent."""
    out: dict[str, dict[str, Any]] = {}
    problems = []
    for kind in backend_kinds():
        entries = out.setdefault(kind.name, {})
        for name, entry in sorted(kind.select(effective).items()):
            where = paths.build([paths.Step("ipsec-nf", "ike"),
                                 paths.Step("ipsec-nf", kind.name, (("name", name),))])
            try:
                payload = kind.payload(entry, dp)
                if not kind.secret:
                    encode_request("load-conn", {name: payload})
            except ViciEncodingError as e:
                problems.append(Problem(where, str(e), "invalid-value", "too-big"))
                continue
            except Exception as e:  # noqa: BLE001 - the server fails such an entry alone
                problems.append(Problem(where, f"cannot build the {kind.name} entry: "
                                        f"{'(message withheld)' if kind.secret else e}",
                                        "operation-failed"))
                continue
            entries[name] = _masked(payload)
    return out, problems


# ---- the effective config as YANG-named data ----------------------------------------------

_NAMES = {"ike": "ike-policy", "ipsec": "ipsec-policy", "ike_proposals": "ike-proposal",
          "esp_proposals": "esp-proposal", "ah_proposals": "ah-proposal",
          "security_policies": "security-policy", "ids": "id", "vip_pools": "vip-pool",
          "certificates": "certificate", "remote_ca_certificates": "remote-ca-certificate"}


def plain(value: Any) -> Any:
    """A value of nf.effective as JSON-ready data named as in the YANG model; unset leaves
    (None, empty lists) left out."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        out = {}
        for f in dataclasses.fields(value):
            v = getattr(value, f.name)
            if v is None or v == () or f.name in ("ike_template", "ipsec_template", "secret"):
                continue
            if not f.repr:  # key material, PEM blobs resolved for the backend
                continue
            out[_NAMES.get(f.name, f.name.replace("_", "-"))] = plain(v)
        return out
    if isinstance(value, tuple):
        return [plain(v) for v in value]
    return value


def vpn_view(vpn: Any) -> dict[str, Any]:
    """A VPN's effective parameters; each policy names its template."""
    out = plain(vpn)
    for key, template in (("ike-policy", vpn.ike_template), ("ipsec-policy", vpn.ipsec_template)):
        if template is not None:
            out[key] = {"template": template, **out.get(key, {})}
    return out


def psk_view(psk: Any) -> dict[str, Any]:
    """A pre-shared key: its name and ids; never its secret."""
    return {"name": psk.name, "id": list(psk.ids), "secret": HIDDEN}


# ---- output --------------------------------------------------------------------------------

def as_json(result: Result, name: str) -> dict[str, Any]:
    """The JSON report of ``--format json``."""
    out: dict[str, Any] = {"file": name, "backend": result.backend,
                           "valid": not result.errors}
    out["errors"] = [p.as_dict() for p in result.errors]
    if result.errors:
        out["complete"] = result.complete
        return out
    eff = result.effective
    assert eff is not None
    out["enabled"] = eff.enabled
    out["global-options"] = plain(eff.global_options)
    out["vpns"] = {n: vpn_view(v) for n, v in sorted(eff.vpns.items())}
    out["pre-shared-keys"] = {n: psk_view(p) for n, p in sorted(eff.psks.items())}
    out["load"] = result.loads
    return out


def _value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, list):
        return ", ".join(_value(x) for x in v)
    return str(v)


def _tree(data: Mapping[str, Any], indent: int) -> Iterator[str]:
    """Nested YANG-named data as indented ``name value`` lines."""
    pad = "  " * indent
    for k, v in data.items():
        if isinstance(v, Mapping):
            yield f"{pad}{k}" + (f" {v['template']}" if "template" in v else "")
            yield from _tree({a: b for a, b in v.items() if a != "template"}, indent + 1)
        elif isinstance(v, list) and v and isinstance(v[0], Mapping):
            for entry in v:
                first, *_ = entry  # the key (name or id) first
                yield f"{pad}{k} {entry[first]}"
                yield from _tree({a: b for a, b in entry.items() if a != first}, indent + 1)
        else:
            yield f"{pad}{k} {_value(v)}"


def _swanctl(data: Mapping[str, Any], indent: int) -> Iterator[str]:
    """A VICI payload in swanctl.conf's syntax."""
    pad = "    " * indent
    for k, v in data.items():
        if isinstance(v, Mapping):
            yield f"{pad}{k} {{"
            yield from _swanctl(v, indent + 1)
            yield f"{pad}}}"
        else:
            yield f"{pad}{k} = {_value(v)}"


_SECTIONS = {"vpn": ("connections", "load-conn"), "pre-shared-key": ("secrets", "load-shared")}


def as_text(result: Result, name: str) -> Iterator[str]:
    """The text report of a valid file (stdout)."""
    eff = result.effective
    assert eff is not None
    yield (f"{name}: valid for the {result.backend} backend: {len(eff.vpns)} VPN(s), "
           f"{len(eff.psks)} pre-shared key(s)")
    if not eff.enabled:
        yield "ike enabled is false: nothing would be loaded"
    options = plain(eff.global_options)
    if options:
        yield ""
        yield "global-options"
        yield from _tree(options, 1)
    for vpn in sorted(eff.vpns.values(), key=lambda v: v.name):
        yield ""
        yield f"vpn {vpn.name}"
        yield from _tree({k: v for k, v in vpn_view(vpn).items() if k != "name"}, 1)
    for psk in sorted(eff.psks.values(), key=lambda p: p.name):
        yield ""
        yield f"pre-shared-key {psk.name}"
        yield from _tree({k: v for k, v in psk_view(psk).items() if k != "name"}, 1)
    for kind, entries in result.loads.items():
        section, command = _SECTIONS.get(kind, (kind, "load"))
        yield ""
        yield f"# what the backend would load ({command})"
        yield f"{section} {{"
        yield from _swanctl(entries, 1)
        yield "}"


def error_lines(result: Result, name: str) -> Iterator[str]:
    """The errors, one a line: ``FILE:LINE: PATH: MESSAGE (error-tag/app-tag)``."""
    for p in result.errors:
        where = f"{name}:{p.line}" if p.line else name
        tag = p.tag + (f"/{p.app_tag}" if p.app_tag else "")
        yield f"{where}: {p.path or '/'}: {p.message} ({tag})"
    n = len(result.errors)
    more = "" if result.complete else " (an error could not be set aside: there may be more)"
    yield f"{name}: {n} error{'s' if n != 1 else ''}{more}"


def run(file: str, backend: str = DEFAULT_BACKEND, fmt: str = "text",
        out: IO[str] | None = None, err: IO[str] | None = None) -> int:
    """The command: check ``file`` (``-`` for standard input); return the exit status."""
    out = out or sys.stdout
    err = err or sys.stderr
    name = "<stdin>" if file == "-" else file
    try:
        if file == "-":
            text = sys.stdin.buffer.read()
        else:
            with open(file, "rb") as f:
                text = f.read()
        result = check(text, backend)
    except OSError as e:
        print(f"ipsec-nf check: {name}: {e.strerror}", file=err)
        return EXIT_USAGE
    except Unreadable as e:
        print(f"ipsec-nf check: {name}: {e}", file=err)
        return EXIT_USAGE
    try:
        if fmt == "json":
            json.dump(as_json(result, name), out, indent=2)
            out.write("\n")
        elif result.errors:
            _write(err, error_lines(result, name))
        else:
            _write(out, as_text(result, name))
        out.flush()
    except BrokenPipeError:  # e.g. piped into head: the reader has what it wanted
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    return EXIT_INVALID if result.errors else EXIT_OK


def _write(stream: IO[str], lines: Iterable[str]) -> None:
    for line in lines:
        stream.write(line + "\n")


__all__ = ["EXIT_INVALID", "EXIT_OK", "EXIT_USAGE", "Problem", "Result", "Unreadable",
           "check", "read_config", "run"]
