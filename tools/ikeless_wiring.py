"""RFC 9061's IKE-less case in `ipsec-nf serve --backend kernel-netlink`: the second backend
(the kernel's SAD/SPD over netlink XFRM), its reconciler, its state and its notifications,
wired beside charon's by ``tools/app.py`` (which calls only what is here)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from typing import Any

from lxml import etree

from nf.effective import EffectiveConfig
from southbound.ikeless_backend import IkelessBackend
from southbound.ikeless_events import IkelessEvents
from southbound.reconciler import Reconciler

log = logging.getLogger(__name__)


class IkelessPart:
    """The IKE-less backend, its reconciler and its event listener."""

    def __init__(self, sync_interval: float, publish: Callable[[etree._Element], None],
                 effective: Callable[[], EffectiveConfig]) -> None:
        self.backend = IkelessBackend()
        self.reconciler = Reconciler(self.backend, sync_interval=sync_interval)
        self._effective = effective
        self.events = IkelessEvents(self.backend, publish, self._spd)

    def _spd(self) -> Any:
        ikl = self._effective().ikeless
        return ikl.spd if ikl else {}

    def set_desired(self, effective: EffectiveConfig) -> None:
        """Hand the effective config's IKE-less entries to the reconciler."""
        self.reconciler.set_desired(effective)

    def read_state(self) -> dict[str, Any]:
        """The IKE-less state read from the kernel now (blocking: one of the state engine's
        extra readers, run in a thread)."""
        return self.backend.read_state(2.0)

    def tasks(self) -> list[Coroutine[Any, Any, None]]:
        """What runs while the server runs: the reconciler and the event listener."""
        return [self.reconciler.run(), self.events.run()]

    async def stop(self) -> None:
        """Remove every SA and policy the backend installed (at shutdown)."""
        try:
            n = await asyncio.to_thread(self.backend.remove_all)
        except Exception:  # noqa: BLE001 - shutting down: say it, go on
            log.exception("removing the IKE-less SAs and policies failed")
            return
        if n:
            log.info("IKE-less: %d SAs and policies removed from the kernel", n)
