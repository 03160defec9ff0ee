"""Listener admission: real-time seats up to a room's cap, near-live HLS past it, flash-crowd proof.

Data flow, by file:

    ratelimit.py      token bucket per client address (pure)              ─┐
    decision.py       lease liveness, full-room hint, HLS delay (pure)     │ policy, no I/O
    seat_token.py     HS256 compact seat token for the SFU (pure)          │
    status.py         status.json document + publish schedule (pure)     ─┘
    backend.py        AdmissionBackend protocol, values, lease errors
    sqlite_backend.py embedded backend + room registry (one machine, many workers)
    redis_backend.py  Redis backend + room registry (many origin instances)
    publisher.py      StatusPublisher: coalesced status.json writes to Storage
    service.py        AdmissionService: join / heartbeat / leave / rooms, glueing the above
    models.py         pydantic request models of the HTTP edge (routes: origin/web/listeners.py, admin.py)
    setup.py          build_admission(settings, storage, broadcast_view), build_service(deps)
    clock.py          the Clock type (origin/clock.py reads the wall clock)
    (the BroadcastView implementation is origin/broadcast/view.py: ListenerView)
"""
