"""The publishing pass's writes to storage: spooled objects uploaded in order, playlists written concurrently."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from concurrent.futures import Executor

from origin.broadcast.publish.playlists import Write
from origin.broadcast.records import ObjectUploaded, Record
from origin.broadcast.stores import RoomStores
from origin.contract import layout
from origin.contract.cache_policy import ObjectKind, headers_for
from origin.errors import StorageError
from origin.metrics import Metrics
from origin.storage.base import Storage

log = logging.getLogger(__name__)

UPLOADS_PER_PASS = 64


def upload_spooled(*, room: str, stores: RoomStores, metrics: Metrics) -> list[Record]:
    """Upload what waits in the spool (storage was failing when it arrived), oldest first, up to a bound per
    pass; stop at the first failure so objects reach storage in order."""
    with stores.states.hold(room) as state:
        waiting = sorted(state.spooled.values(), key=lambda o: (o.idx, o.received_at))[:UPLOADS_PER_PASS]
    done: list[Record] = []
    for obj in waiting:
        key = layout.init_segment(room, obj.session, obj.rendition) if obj.is_init else layout.media_segment(
            room, obj.session, obj.rendition, obj.idx)  # fmt: skip
        kind = ObjectKind.INIT if obj.is_init else ObjectKind.SEGMENT
        try:
            stores.spool.upload(key, stores.storage, headers_for(kind))
        except KeyError:
            log.error("room=%s spooled %s is missing from the spool", room, key)
            continue
        except StorageError as exc:
            metrics.storage_error(stores.storage.name, "put")
            log.warning("room=%s upload of spooled %s failed, will retry: %s", room, key, exc)
            break  # storage is still failing: try again next pass, in order
        stores.spool.delete(key)
        done.append(ObjectUploaded(session=obj.session, rendition=obj.rendition, idx=obj.idx))
    return done


def put_all(storage: Storage, writes: Sequence[Write], *, durable: bool, io: Executor | None) -> None:
    """Write concurrently when an executor is given (remote storage); raise the first failure after all ran."""
    def put(w: Write) -> None:
        storage.put(w.key, w.text.encode(), headers_for(w.kind), durable=durable)

    if io is None or len(writes) < 2:
        for w in writes:
            put(w)
        return
    errors = [f.exception() for f in [io.submit(put, w) for w in writes]]
    for error in errors:
        if error is not None:
            raise error
