"""Read-only views of a room's broadcast for the rest of the origin (admission, the player, the admin API).

`ListenerView` is admission's `BroadcastView`: the broadcast as a listener must see it. It reads `live` only
once a master playlist exists (a player that follows status.json never loads a URL that 404s), and links
the replay download once it is built. `summary` is the operator's view of the same state.
"""

from __future__ import annotations

from dataclasses import dataclass

from origin.admission.status import BroadcastInfo, ListenerState
from origin.broadcast.model import BroadcastState, RoomState
from origin.broadcast.states import RoomStates
from origin.contract import layout


@dataclass(frozen=True, kw_only=True)
class BroadcastSummary:
    state: BroadcastState
    session: str | None  # the open ingest session
    sessions: int
    renditions: tuple[str, ...]
    playable: bool
    started_at: float | None
    ended_at: float | None
    edge_pdt: float | None  # PROGRAM-DATE-TIME at the end of the newest published segment
    last_received_at: float | None
    backlog: int
    quarantined: int
    fillers_in_tail: int  # filler segments among the newest published (source trouble shows here first)

    def to_json(self) -> dict[str, object]:
        return {k: (v.value if isinstance(v, BroadcastState) else list(v) if isinstance(v, tuple) else v)
                for k, v in self.__dict__.items()}  # fmt: skip


def summarize(state: RoomState) -> BroadcastSummary:
    lasts = [rs.last for rs in state.renditions.values() if rs.last is not None]
    session = state.open_session()
    tail = [p for rs in state.renditions.values() for p in list(rs.tail)[-6:]]
    return BroadcastSummary(
        state=state.state,
        session=session.id if session else None,
        sessions=len(state.sessions),
        renditions=tuple(sorted(n for n, rs in state.renditions.items() if rs.published)),
        playable=state.playable,
        started_at=state.started_at,
        ended_at=state.ended_at,
        edge_pdt=max((p.end_pdt for p in lasts), default=None),
        last_received_at=max((s.last_activity_at for s in state.sessions.values()), default=None),
        backlog=len(state.spooled),
        quarantined=state.quarantined,
        fillers_in_tail=sum(p.filler for p in tail),
    )


class ListenerView:
    def __init__(self, states: RoomStates, *, public_base_url: str) -> None:
        self.states = states
        self.public_base_url = public_base_url

    def broadcast(self, room: str) -> BroadcastInfo:
        if not self.states.journal.exists(room):  # never broadcast: do not create its state
            return BroadcastInfo()
        with self.states.hold(room) as state:
            raw, playable = state.state, state.playable
            sessions = state.session_list()
            downloaded = state.download_bytes is not None
        listener: ListenerState
        if raw is BroadcastState.ENDED:
            listener = "ended"
        elif raw is BroadcastState.IDLE or not playable:
            listener = "idle"
        else:
            listener = "live"
        segment_s = sessions[-1].segment_seconds if sessions else None
        has_replay = playable and listener != "idle"
        return BroadcastInfo(
            state=listener,
            replay_url=f"{self.public_base_url}/{layout.replay_master(room)}" if has_replay else None,
            segment_s=segment_s,
            download_url=f"{self.public_base_url}/{layout.replay_download(room)}" if downloaded else None,
        )
