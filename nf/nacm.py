"""Network Configuration Access Control (RFC 8341): read, write and exec checks.

The rules are read from /nacm in running. Members of the built-in `admin` group (the first
user of an appliance) have every right, like RFC 8341's recovery session; everyone else is
subject to the rules and to the defaults (read permit, write deny, exec permit), and nodes
marked nacm:default-deny-all (secrets) are readable only through an explicit permit rule.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from lxml import etree

from nf import paths
from nf.edit import elements
from nf.errors import AccessDenied
from nf.paths import PathError, Step
from nf.schema import SNode

NACM = "urn:ietf:params:xml:ns:yang:ietf-netconf-acm"
ADMIN_GROUP = "admin"
ALL_OPS = frozenset({"create", "read", "update", "delete", "exec"})
# RPCs marked nacm:default-deny-all (RFC 6241 / RFC 8341 section 3.2.7; RFC 8639).
DENY_ALL_RPCS = {("ietf-netconf", "kill-session"), ("ietf-netconf", "delete-config"),
                 ("ietf-subscribed-notifications", "kill-subscription")}
# ipsec-nf's actions on SAs, marked so in the model: only an explicit exec rule permits them
DENY_ALL_RPCS |= {("ipsec-nf", r) for r in ("initiate", "terminate", "rekey", "clear",
                                             "reset-counters")}
# the certificate authority's RPCs (northbound/ops_ca.py), marked so in the model
DENY_ALL_RPCS |= {("ipsec-nf", r) for r in ("ca-create", "ca-issue", "ca-list", "ca-revoke",
                                             "ca-delete", "ca-export")}
# RFC 8341 section 3.4.6 step 3: the end-of-replay and end-of-subscription notifications of
# RFC 5277 are always delivered.
ALWAYS_DELIVERED = {("nc-notifications", "replayComplete"),
                    ("nc-notifications", "notificationComplete")}


@dataclass
class NacmCounters:
    """The RFC 8341 ``config false`` counters of /nacm, counted since the server started."""

    denied_operations: int = 0
    """Protocol operation requests refused by the exec check (section 3.4.4)."""
    denied_data_writes: int = 0
    """Requests to alter a configuration datastore refused by the write checks (3.4.5)."""
    denied_notifications: int = 0
    """Notifications dropped for a subscription because the event type was denied (3.4.6)."""


@dataclass(frozen=True)
class Rule:
    """One NACM rule of a rule-list."""

    module: str
    rpc: str | None
    notification: str | None
    path: tuple[Step, ...] | None  # None: no path; () the whole datastore ('/')
    ops: frozenset[str]
    permit: bool


@dataclass
class Policy:
    """The NACM configuration, parsed."""

    enabled: bool = True
    read_default: bool = True
    write_default: bool = False
    exec_default: bool = True
    external_groups: bool = True
    groups: dict[str, set[str]] = field(default_factory=dict)
    rule_lists: list[tuple[set[str], list[Rule]]] = field(default_factory=list)


def _flag(el: etree._Element | None, name: str, default: bool, yes: str) -> bool:
    v = el.findtext(f"{{{NACM}}}{name}") if el is not None else None
    return default if v is None else v.strip() == yes


# the steps of a rule path that cannot be read: a step with no name, which no node matches
NO_NODE: tuple[Step, ...] = (Step("", ""),)


def _rule_path(path_el: etree._Element) -> tuple[Step, ...]:
    """The steps of a rule's path, its prefixes resolved where it is written (a step
    without prefix matches that name in any module); NO_NODE if it cannot be read."""
    try:
        return paths.parse(path_el.text or "", path_el.nsmap)
    except PathError:
        return NO_NODE


def parse_policy(running: etree._Element) -> Policy:
    """The /nacm settings of a running config tree."""
    n = running.find(f"{{{NACM}}}nacm")
    p = Policy(
        enabled=_flag(n, "enable-nacm", True, "true"),
        read_default=_flag(n, "read-default", True, "permit"),
        write_default=_flag(n, "write-default", False, "permit"),
        exec_default=_flag(n, "exec-default", True, "permit"),
        external_groups=_flag(n, "enable-external-groups", True, "true"),
    )
    if n is None:
        return p
    for g in n.iterfind(f"{{{NACM}}}groups/{{{NACM}}}group"):
        p.groups[g.findtext(f"{{{NACM}}}name", "")] = {
            (u.text or "").strip() for u in g.iterfind(f"{{{NACM}}}user-name")}
    for rl in n.iterfind(f"{{{NACM}}}rule-list"):
        groups = {(g.text or "").strip() for g in rl.iterfind(f"{{{NACM}}}group")}
        rules = []
        for r in rl.iterfind(f"{{{NACM}}}rule"):
            ops_text = (r.findtext(f"{{{NACM}}}access-operations") or "*").split()
            path_el = r.find(f"{{{NACM}}}path")
            rules.append(Rule(
                module=(r.findtext(f"{{{NACM}}}module-name") or "*").strip(),
                rpc=(r.findtext(f"{{{NACM}}}rpc-name") or "").strip() or None,
                notification=(r.findtext(f"{{{NACM}}}notification-name") or "").strip() or None,
                path=_rule_path(path_el) if path_el is not None else None,
                ops=ALL_OPS if "*" in ops_text else frozenset(ops_text),
                permit=(r.findtext(f"{{{NACM}}}action") or "").strip() == "permit",
            ))
        p.rule_lists.append((groups, rules))
    return p


# the steps of a data node from the top, with its module names, list keys, leaf-list value
NodePath = tuple[Step, ...]


class Access:
    """The rights of one user (with the groups our user store gives it) under a policy."""

    def __init__(self, policy: Policy, user: str, groups: list[str]) -> None:
        self.policy = policy
        self.groups = {g for g, users in policy.groups.items() if user in users}
        if policy.external_groups:
            self.groups |= set(groups)
        self.superuser = ADMIN_GROUP in self.groups or not policy.enabled
        self.rules = [r for gs, rules in policy.rule_lists
                      if "*" in gs or gs & self.groups for r in rules]

    def _match(self, kind: str, module: str, op: str, name: str | None = None,
               node: NodePath | None = None) -> bool | None:
        for r in self.rules:
            if op not in r.ops or r.module not in ("*", module):
                continue
            if r.rpc is not None and (kind != "rpc" or r.rpc not in ("*", name)):
                continue
            if r.notification is not None and (
                    kind != "notification" or r.notification not in ("*", name)):
                continue
            if r.path is not None and (kind != "data" or not _path_covers(r.path, node or ())):
                continue
            return r.permit
        return None

    def may_exec(self, module: str, rpc: str) -> bool:
        """RFC 8341 section 3.4.4: may this user invoke the operation?"""
        if self.superuser or (module, rpc) == ("ietf-netconf", "close-session"):
            return True
        found = self._match("rpc", module, "exec", rpc)
        if found is not None:
            return found
        return (module, rpc) not in DENY_ALL_RPCS and self.policy.exec_default

    def may_notify(self, module: str, name: str) -> bool:
        """RFC 8341 section 3.4.6: may this user receive the notification?"""
        if self.superuser or (module, name) in ALWAYS_DELIVERED:
            return True
        found = self._match("notification", module, "read", name)
        return self.policy.read_default if found is None else found

    def may_data(self, op: str, node: NodePath, snodes: list[SNode | None]) -> bool:
        """RFC 8341 section 3.4.5: may this user do ``op`` on the data node at ``node``?"""
        if self.superuser:
            return True
        module = node[0].module if node else ""
        found = self._match("data", module, op, node=node)
        if found is not None:
            return found
        if any(s is not None and s.deny_all for s in snodes):
            return False
        if op != "read" and any(s is not None and s.deny_write for s in snodes):
            return False
        return self.policy.read_default if op == "read" else self.policy.write_default

    def denied(self, message: str, path: str | None = None) -> AccessDenied:
        """The access-denied error (RFC 8341 section 3.4)."""
        return AccessDenied(message, path)


def _path_covers(rule: NodePath, node: NodePath) -> bool:
    """Is ``node`` the node of a rule's path or below it (the predicates a rule gives must
    match; a positional one is not looked at)?"""
    if len(rule) > len(node):
        return False
    for r, n in zip(rule, node, strict=False):
        if r.name != n.name or (r.module and r.module != n.module):
            return False
        if r.keys and any(n.key_values().get(k) != v for k, v in r.keys):
            return False
    return True


def prune_unreadable(access: Access, roots: list[etree._Element],
                     top: dict[tuple[str, str], SNode]) -> list[etree._Element]:
    """Remove from ``roots`` (in place) every node the user may not read."""
    if access.superuser:
        return roots
    return [r for r in roots if _prune(access, r, paths.schema_of(top, r), (), [])]


def _prune(access: Access, el: etree._Element, sn: SNode | None, parent: NodePath,
           snodes: list[SNode | None]) -> bool:
    node = (*parent, paths.element_step(sn, el))
    chain = [*snodes, sn]
    if not access.may_data("read", node, chain):
        return False
    for c in list(elements(el)):
        if not _prune(access, c, paths.schema_of(sn, c), node, chain):
            el.remove(c)
    return True


def may_read_path(access: Access, path: str, top: dict[tuple[str, str], SNode]) -> bool:
    """May the user read the node at an edit path ('/m:a/m:b[m:k='v']')? Not if the path
    cannot be read."""
    if access.superuser:
        return True
    try:
        node = paths.parse(path)
    except PathError:
        return False
    snodes = paths.resolve(node, top)
    return all(access.may_data("read", node[:i + 1], snodes[:i + 1]) for i in range(len(node)))


def _locate(el: etree._Element,
            top: dict[tuple[str, str], SNode]) -> tuple[NodePath, list[SNode | None]]:
    """The NodePath of a node of a datastore tree (below its root element) and the schema
    nodes along it."""
    root = el.getroottree().getroot()
    nodes = paths.chain(el, top, root if root is not el else None)
    return paths.steps_of(nodes), [sn for _, sn in nodes]


def write_checker(access: Access, top: dict[tuple[str, str], SNode],  # noqa: ANN201
                  counters: NacmCounters | None = None):
    """A check for nf.edit.apply_edit that raises access-denied on a forbidden write.

    Make one per request: the first refusal counts once in ``counters.denied_data_writes``
    (RFC 8341: one denied request, however many of its nodes were refused)."""
    refused = False

    def check(op: str, el: etree._Element, deep: bool) -> None:
        nonlocal refused
        if access.superuser:
            return
        targets = el.iter() if deep else [el]
        for t in targets:
            if not isinstance(t.tag, str):
                continue
            node, snodes = _locate(t, top)
            if not access.may_data(op, node, snodes):
                if counters is not None and not refused:
                    counters.denied_data_writes += 1
                refused = True
                # the error-path names a leaf-list, not its value (the user may not read it)
                shown = [Step(s.module, s.name) if s.keys[:1] and s.keys[0][0] == "." else s
                         for s in node]
                raise access.denied(f"{op} of {node[-1].name!r} is not allowed for this user",
                                    paths.build(shown))

    return check
