"""The SSH server's host key: loaded, or generated (ed25519, mode 0600) on first start."""

from __future__ import annotations

import contextlib
import logging
import os
import secrets
from pathlib import Path

import asyncssh

# the front door logs as one: northbound.ssh (as frontdoor.py)
log = logging.getLogger("northbound.ssh")

HOST_KEY_ALG = "ssh-ed25519"


def load_or_create_host_key(host_key_path: Path | str) -> asyncssh.SSHKey:
    """Load the server host key, generating an ed25519 key (mode 0600) if absent."""
    path = Path(host_key_path)
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        key = asyncssh.generate_private_key(HOST_KEY_ALG)
        tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            os.fchmod(fd, 0o600)
            with os.fdopen(fd, "wb") as f:
                f.write(key.export_private_key())
                f.flush()
                os.fsync(f.fileno())
            os.link(tmp, path)  # fails if another process created it meanwhile
        except FileExistsError:
            pass
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
        log.info("generated SSH host key %s", path)
    return asyncssh.read_private_key(path)
