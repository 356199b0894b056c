"""The gNMI gRPC server: grpc.aio on the server's event loop, TLS (certificate and key from
files) or, only when asked, plaintext; every call's ``username``/``password`` metadata is
checked (UNAUTHENTICATED otherwise) before the operation runs; errors are the gRPC status
codes of the gNMI specification."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
from pygnmi.spec.v080 import gnmi_pb2 as pb
from pygnmi.spec.v080 import gnmi_pb2_grpc

from northbound.gnmi import get, subscribe
from northbound.gnmi import set as gnmi_set
from northbound.gnmi.auth import GnmiSession, Unauthenticated
from northbound.gnmi.context import GnmiContext
from northbound.gnmi.errors import GnmiError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class GnmiListen:
    """Where and how the gNMI server listens (``serve --gnmi``)."""

    host: str
    port: int
    cert: Path | None = None
    key: Path | None = None
    insecure: bool = False


class Servicer(gnmi_pb2_grpc.gNMIServicer):
    """The gNMI service over one GnmiContext."""

    def __init__(self, g: GnmiContext) -> None:
        self.g = g

    async def _caller(self, context: grpc.aio.ServicerContext) -> GnmiSession:
        meta = {k: v for k, v in (context.invocation_metadata() or ())
                if isinstance(v, str)}
        try:
            return await self.g.auth.check(meta, context.peer() or "")
        except Unauthenticated as e:
            await context.abort(grpc.StatusCode.UNAUTHENTICATED, str(e))
            raise  # abort raises; for type checkers

    async def _read_allowed(self, session: GnmiSession, context: Any, rpc: str) -> None:
        if not self.g.access(session).may_exec("ietf-netconf", rpc):
            self.g.ctx.nacm_counters.denied_operations += 1
            await context.abort(grpc.StatusCode.PERMISSION_DENIED,
                                f"this user may not read ({rpc})")

    async def Capabilities(self, request: pb.CapabilityRequest,  # noqa: N802 - gNMI's name
                           context: grpc.aio.ServicerContext) -> pb.CapabilityResponse:
        await self._caller(context)
        return get.capabilities(self.g)

    async def Get(self, request: pb.GetRequest,  # noqa: N802
                  context: grpc.aio.ServicerContext) -> pb.GetResponse:
        session = await self._caller(context)
        await self._read_allowed(session, context, "get")
        try:
            return await get.get(self.g, session, request)
        except Exception as e:  # noqa: BLE001 - every failure is a status
            await context.abort(*_status(e, "Get"))
            raise

    async def Set(self, request: pb.SetRequest,  # noqa: N802
                  context: grpc.aio.ServicerContext) -> pb.SetResponse:
        session = await self._caller(context)
        try:
            response = await gnmi_set.set_(self.g, session, request)
        except Exception as e:  # noqa: BLE001 - every failure is a status
            code, message = _status(e, "Set")
            log.info("gNMI Set by %r refused: %s", session.user, message)
            await context.abort(code, message)
            raise
        log.info("gNMI Set by %r from %s: %d operations", session.user, session.source_host,
                 len(response.response))
        return response

    async def Subscribe(self, request_iterator: AsyncIterator[pb.SubscribeRequest],  # noqa: N802
                        context: grpc.aio.ServicerContext
                        ) -> AsyncIterator[pb.SubscribeResponse]:
        session = await self._caller(context)
        await self._read_allowed(session, context, "get")
        try:
            async for response in subscribe.subscribe(self.g, session, request_iterator):
                yield response
        except Exception as e:  # noqa: BLE001 - every failure is a status
            await context.abort(*_status(e, "Subscribe"))


def _status(e: Exception, rpc: str) -> tuple[grpc.StatusCode, str]:
    """The status of a failed call: a GnmiError's own; anything else is a bug of ours,
    logged with its traceback and answered INTERNAL."""
    if isinstance(e, GnmiError):
        return e.code, e.message
    log.error("gNMI %s failed", rpc, exc_info=e)
    return grpc.StatusCode.INTERNAL, f"internal error ({type(e).__name__}): see the server's log"


class GnmiServer:
    """The gRPC server of one gateway; ``port`` is the one bound once started (0 asks the
    system for a free one)."""

    def __init__(self, g: GnmiContext, host: str, port: int, cert: Path | None = None,
                 key: Path | None = None, insecure: bool = False) -> None:
        if not insecure and (cert is None or key is None):
            raise ValueError("gNMI needs a TLS certificate and key (or insecure mode)")
        self.g, self.host, self.port = g, host, port
        self.cert, self.key, self.insecure = cert, key, insecure
        self._server: grpc.aio.Server | None = None

    async def start(self) -> int:
        """Bind and serve; return the port. OSError if the address cannot be bound or the
        certificate/key cannot be read."""
        server = grpc.aio.server()
        gnmi_pb2_grpc.add_gNMIServicer_to_server(Servicer(self.g), server)
        where = f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"
        if self.insecure:
            port = _bind(lambda: server.add_insecure_port(where), where)
        else:
            assert self.cert is not None and self.key is not None
            creds = grpc.ssl_server_credentials([_pem(self.key, self.cert)])
            port = _bind(lambda: server.add_secure_port(where, creds), where,
                         " or the key does not match the certificate")
        if port == 0:
            raise OSError(f"gNMI cannot listen on {where}")
        await server.start()
        self._server, self.port = server, port
        self.g.ctx.ds.on_change.append(self.g.config.changed)
        log.info("gNMI listening on %s (%s)", where.rsplit(":", 1)[0] + f":{port}",
                 "plaintext" if self.insecure else "TLS")
        return port

    async def stop(self) -> None:
        """Stop serving (streams are ended)."""
        if self.g.config.changed in self.g.ctx.ds.on_change:
            self.g.ctx.ds.on_change.remove(self.g.config.changed)
        if self._server is not None:
            await self._server.stop(grace=1.0)
            self._server = None


def _bind(add: Any, where: str, or_else: str = "") -> int:
    try:
        return add()
    except RuntimeError:  # grpc says only "Failed to bind"
        raise OSError(f"gNMI cannot listen on {where} (in use, or not an address of this "
                      f"host{or_else})") from None


def _pem(key: Path, cert: Path) -> tuple[bytes, bytes]:
    """The key and certificate chain, checked (grpc would only say it cannot bind)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization

    key_pem, cert_pem = key.read_bytes(), cert.read_bytes()  # OSError names the file
    try:
        x509.load_pem_x509_certificate(cert_pem)
    except ValueError:
        raise OSError(f"gNMI: {cert} is not a PEM certificate") from None
    try:
        serialization.load_pem_private_key(key_pem, password=None)
    except (ValueError, TypeError):
        raise OSError(f"gNMI: {key} is not an unencrypted PEM private key") from None
    return key_pem, cert_pem
