"""Giving charon new global options the cheapest way that works (southbound.charon_conf's
``apply_method``): nothing, a reload of its settings, or a restart."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from typing import Any

from lxml import etree

from nf.effective import GlobalOptions
from northbound import notifications
from southbound.charon import CharonProcess
from southbound.charon_conf import apply_method

log = logging.getLogger("ipsec-nf")


class CharonOptions:
    """Applies the global options of each commit to the running charon."""

    def __init__(self, charon: CharonProcess,
                 publish: Callable[[etree._Element], None]) -> None:
        self.charon = charon
        self.publish = publish  # the NETCONF event stream's

    def apply(self, options: GlobalOptions) -> Coroutine[Any, Any, None] | None:
        """Nothing when what charon is given did not change (or charon is not running: the
        options are written at its next start); else the work to schedule: a reload of its
        settings (every SA kept) when only reloadable settings changed, a restart otherwise
        (the supervisor starts it again and the reconciler loads everything). Said in the log
        and in a global-options-applied notification."""
        method = apply_method(self.charon.options, options)
        self.charon.options = options
        if method is None or not self.charon.alive():
            return None
        if method == "reload":
            log.info("global options changed: charon's settings reloaded, SAs kept")
            return self._reload(options)
        log.warning("global options changed: restarting charon (a setting it reads only at "
                    "start changed)")
        self.publish(notifications.global_options_applied("restart"))
        return asyncio.to_thread(self.charon.stop)

    async def _reload(self, options: GlobalOptions) -> None:
        """Reload charon's settings; restart it if it cannot (its session is gone)."""
        method = "reload"
        try:
            await asyncio.to_thread(self.charon.reload, options)
        except Exception as e:  # noqa: BLE001 - any failure: fall back to the restart
            log.warning("reloading charon's settings failed (%s): restarting it", e)
            await asyncio.to_thread(self.charon.stop)
            method = "restart"
        self.publish(notifications.global_options_applied(method))


async def options_done(work: asyncio.Task[Any] | None, timeout: float) -> bool:
    """Whether the global options' work (a settings reload or a restart of charon, scheduled
    from :meth:`CharonOptions.apply`) has ended, waiting at most ``timeout`` seconds; True
    when there is none. A failed one has ended too (it logged why; the entries tell the
    rest)."""
    if work is None or work.done():
        return True
    try:
        await asyncio.wait_for(asyncio.shield(work), timeout)
    except TimeoutError:
        return False
    except Exception:  # noqa: BLE001, S110 - see above
        pass
    return True
