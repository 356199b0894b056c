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

import json
import os
import sys
from collections.abc import Iterable, Mapping
from typing import IO, Any

from nf import paths
from nf.checks import run_checks
from nf.effective import EffectiveConfig
from nf.errors import RpcError
from nf.schema import Schema
from nf.templates import resolve
from southbound.backend import DataPlane
from southbound.vici_client import ViciEncodingError, encode_request
from tools.backends import DEFAULT_BACKEND, backend_checks, backend_kinds, dataplane
from tools.check_input import Unreadable, read_config
from tools.check_output import as_json, as_text, error_lines
from tools.check_result import HIDDEN, Problem, Result
from tools.check_search import ErrorSearch, find_element

EXIT_OK, EXIT_INVALID, EXIT_USAGE = 0, 1, 2


def check(text: bytes, backend: str = DEFAULT_BACKEND, schema: Schema | None = None) -> Result:
    """Check a configuration file's content for ``backend``; Unreadable if it cannot be
    parsed."""
    schema = schema or Schema()
    dp = dataplane(backend)
    config, _ = read_config(text, schema)
    search = ErrorSearch(schema, config)
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


__all__ = ["EXIT_INVALID", "EXIT_OK", "EXIT_USAGE", "HIDDEN", "Problem", "Result", "Unreadable",
           "as_text", "check", "read_config", "run"]
