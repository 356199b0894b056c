"""A real gNMI server (grpc.aio, its own event loop in a thread) over real datastores and
users, without charon: the state comes from a StateSource the test drives."""

from __future__ import annotations

import asyncio
import ipaddress
import shutil
import threading
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from nf.history import History
from nf.observed import StateChange, StateSnapshot
from northbound import users
from northbound.gnmi.auth import Authenticator
from northbound.gnmi.context import GnmiContext
from northbound.gnmi.server import GnmiServer
from tests.unit.northbound.conftest import make_context

ADMIN, ADMIN_PW = "admin", "admin-gnmi-pw"
READER, READER_PW = "reader", "reader-gnmi-pw"


class FakeState:
    """A StateSource whose content the test sets (each set is one change, in order)."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.snap = StateSnapshot({}, datetime.now(UTC), False, 0)
        self.queues: set[asyncio.Queue[StateChange]] = set()
        self.reads = 0

    async def snapshot(self, max_age: float = 1.0, max_stale: float = 0.0) -> StateSnapshot:
        self.reads += 1
        return self.snap

    def expire(self) -> None:
        pass

    async def changes(self) -> AsyncIterator[StateChange]:
        q: asyncio.Queue[StateChange] = asyncio.Queue()
        self.queues.add(q)
        try:
            while True:
                yield await q.get()
        finally:
            self.queues.discard(q)

    def set(self, tree: dict[str, Any], reason: str = "sa-event") -> None:
        """Publish a new snapshot (from the test's thread)."""
        def publish() -> None:
            self.snap = StateSnapshot(tree, datetime.now(UTC), False, self.snap.version + 1)
            for q in self.queues:
                q.put_nowait(StateChange(reason, self.snap))
        self.loop.call_soon_threadsafe(publish)

    def listeners(self) -> int:
        return len(self.queues)


class Harness:
    """The server on 127.0.0.1 (insecure unless ``cert``/``key``), users admin and reader."""

    def __init__(self, tmp: Path, cert: Path | None = None, key: Path | None = None,
                 store_copy: Path | None = None) -> None:
        self.tmp = tmp
        tmp.mkdir(parents=True, exist_ok=True, mode=0o700)
        store = users.users_path(tmp)
        if store_copy is not None:  # scrypt costs seconds a hash: made once per session
            shutil.copy(store_copy, store)
        else:
            users.set_password(tmp, ADMIN, ADMIN_PW)  # the first user: group admin
            users.set_password(tmp, READER, READER_PW, ["operators"])
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.state = FakeState(self.loop)
        self.ctx = make_context(tmp)
        self.history = History(tmp)
        self.changes: list[tuple[str, int, list]] = []
        self.ctx.ds.on_change.append(self._record)
        g = GnmiContext(ctx=self.ctx, state=self.state, auth=Authenticator(tmp))
        self.server = GnmiServer(g, "127.0.0.1", 0, cert, key, insecure=cert is None)
        self.port = self.call(self.server.start())

    def _record(self, sid: int, edits: list, before: dict, after: dict) -> None:
        s = self.ctx.registry.get(sid)
        user = s.user if s else "(server)"
        self.changes.append((user, sid, edits))
        self.history.record(before, after, user, sid, "")

    def call(self, coro: Any, timeout: float = 30) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def run(self, fn: Callable[[], Any]) -> Any:
        """Run a plain function on the server's loop (datastore access)."""
        async def wrapped() -> Any:
            return fn()
        return self.call(wrapped())

    def close(self) -> None:
        self.call(self.server.stop())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)


def self_signed(tmp: Path) -> tuple[Path, Path]:
    """A self-signed certificate for gateway.test and 127.0.0.1, and its key (PEM)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "gateway.test")])
    now = datetime.now(UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(minutes=1))
            .not_valid_after(now + timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName(
                [x509.DNSName("gateway.test"),
                 x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
            .sign(key, hashes.SHA256()))
    cert_path, key_path = tmp / "gnmi.crt", tmp / "gnmi.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path
