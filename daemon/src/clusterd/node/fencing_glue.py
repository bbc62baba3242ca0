"""Wire the fencing layer (``clusterd.fencing.runtime.Fencer``) into the node.

The fencer registers ``fence.node`` / ``fence.ack`` / ``fence.status`` on the control
registry, fills the status document's ``fencing`` section, keeps its intents beside the
incarnation in the state dir, and hears about every agreed view (members with their
incarnations, quorum, coordinator, who left cleanly) and every new cluster.conf.
Only the quorate coordinator executes fence operations (the fencing policy decides).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable
from typing import TYPE_CHECKING

from clusterd.errors import ClusterError, FatalError
from clusterd.fencing.runtime import Fencer
from clusterd.fencing.state import ConfigChanged, PolicyConfig, ViewChanged
from clusterd.membership import events as ev

if TYPE_CHECKING:
    from clusterd.node.daemon import Daemon

logger = logging.getLogger(__name__)

INTENTS_FILE = "fence-intents.json"


class FencingGlue:
    def __init__(self, daemon: Daemon) -> None:
        self.daemon = daemon
        rt = daemon.rt
        self.fencer = Fencer(rt.local.name, PolicyConfig.from_conf(rt.conf),
                             conf_provider=lambda: rt.conf,
                             intents_path=os.path.join(daemon.opts.state_dir, INTENTS_FILE))
        try:
            self.fencer.load()
        except ClusterError as exc:
            raise FatalError(f"cannot start: fence intents: {exc}") from None
        self.fencer.register(daemon.registry)
        daemon.sections["fencing"] = self.fencer.status_section
        self._view_key: tuple | None = None

    def on_events(self, events: Iterable[ev.Event]) -> None:
        """After each batch of core events: report a changed view/quorum to the fencer."""
        left_clean = {e.nodeid for e in events if isinstance(e, ev.NodeLeft)}
        core = self.daemon.rt.core.membership
        view = core.view
        if view is None:
            return
        key = (view.vid, core.quorum.quorate)
        if key == self._view_key and not left_clean:
            return
        self._view_key = key
        names = {n.nodeid: n.name for n in self.daemon.rt.conf.nodes}
        self.fencer.handle(ViewChanged.from_membership(view, names, core.quorum.quorate,
                                                       left_clean=left_clean))

    def on_conf(self, conf: object) -> None:
        self.fencer.handle(ConfigChanged(PolicyConfig.from_conf(conf)))

    def recovery_allowed(self, node: str) -> bool:
        return self.fencer.recovery_allowed(node)

    async def close(self) -> None:
        await self.fencer.close()
