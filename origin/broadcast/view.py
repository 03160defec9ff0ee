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
from origin.ops.room_stats import PublishStats


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
    segment_s: float  # the segment length the room's sessions declared
    published: int  # segments named in its playlists so far (every rendition, filler included)
    # From the owner's figures (origin/ops/room_stats.py): None until it wrote some.
    live_edge_at: float | None = None  # when the live playlists last advanced in storage
    live_edge_age_s: float | None = None  # now - live_edge_at (now - started_at before the first advance)
    publish_p50_s: float | None = None  # publish latency over the owner's last minute
    publish_p99_s: float | None = None

    def to_json(self) -> dict[str, object]:
        return {k: (v.value if isinstance(v, BroadcastState) else list(v) if isinstance(v, tuple) else v)
                for k, v in self.__dict__.items()}  # fmt: skip


def summarize(state: RoomState, *, stats: PublishStats | None = None, now: float | None = None) -> BroadcastSummary:
    """The room at a glance; `stats` are the owner's figures, `now` gives the live edge an age."""
    edge_at = stats.live_edge_at if stats is not None else None
    since = edge_at if edge_at is not None else state.started_at
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
        segment_s=state.nominal_segment_s,
        published=sum(rs.published for rs in state.renditions.values()),
        live_edge_at=edge_at,
        live_edge_age_s=max(0.0, now - since) if now is not None and since is not None else None,
        publish_p50_s=stats.p50_s if stats is not None else None,
        publish_p99_s=stats.p99_s if stats is not None else None,
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
