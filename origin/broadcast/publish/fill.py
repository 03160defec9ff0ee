"""Filler written for late slots: the bytes retimed onto the session's timeline and stored durably."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable
from concurrent.futures import Executor

from origin.broadcast import fmp4
from origin.broadcast.model import BroadcastState, Publication
from origin.broadcast.publish.filler import FillerBank, FillerError, FillerPolicy, FillerSlot, plan_fillers
from origin.broadcast.stores import RoomStores
from origin.contract import layout
from origin.contract.cache_policy import ObjectKind, headers_for
from origin.errors import StorageError
from origin.metrics import Metrics

log = logging.getLogger(__name__)


@dataclasses.dataclass(kw_only=True)
class SlotFiller:
    """Writes one room's filler for every rendition whose next slot is past its deadline."""

    room: str
    stores: RoomStores
    bank: FillerBank
    policy: FillerPolicy
    metrics: Metrics
    io: Executor | None = None

    def fill(self, now: float, fresh: set[str], advanced: Callable[[str], float | None]) -> list[Publication]:
        """Filler publications for live renditions not in `fresh` (published this pass), contiguous per rendition."""
        with self.stores.states.hold(self.room) as state:
            if state.state is not BroadcastState.LIVE:
                return []
            slots = [s for r in state.renditions if r not in fresh
                     for s in plan_fillers(state, r, now, self.policy, advanced(r))]  # fmt: skip
        # Renditions in parallel on remote storage: the edge must not wait for three writes in a row.
        futures = [self.io.submit(self._make, slot) for slot in slots] if self.io is not None and len(slots) > 1 else []
        made: list[Publication] = []
        failed: set[str] = set()  # a rendition's fillers must stay contiguous: stop at its first failure
        for i, slot in enumerate(slots):
            p = slot.publication
            if p.rendition in failed and not futures:
                continue
            try:
                made_p = futures[i].result() if futures else self._make(slot)
            except (FillerError, StorageError) as exc:
                self.metrics.storage_error(self.stores.storage.name, "put")
                log.warning("room=%s filler for %s failed: %s", self.room, p.rendition, exc)
                failed.add(p.rendition)
                continue
            if p.rendition not in failed:
                made.append(made_p)
        if made:
            self.metrics.filler(self.room, len(made))
            log.warning("room=%s source late: %d filler segment(s) on %s", self.room, len(made),
                        ",".join(sorted({p.rendition for p in made})))  # fmt: skip
        return made

    def _make(self, slot: FillerSlot) -> Publication:
        p = slot.publication
        template = self.bank.segment(channels=slot.channels, sample_rate=slot.sample_rate, bitrate=slot.bitrate,
                                     frames=slot.frames)  # fmt: skip
        data = fmp4.retime_segment(template, base_decode_time=slot.base_decode_time, sequence_number=p.msn)
        key = layout.filler_segment(self.room, p.session, p.rendition, p.msn)
        self.stores.storage.put(key, data, headers_for(ObjectKind.SEGMENT))  # durable: named right away
        return dataclasses.replace(p, size=len(data))
