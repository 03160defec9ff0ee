"""The real-time room in front: an SFU that enforces the seats admission grants.

Data flow, by file:

    naming.py      Spillway room/lease → Janus room id, room secret, join tokens, participant ids (pure)
    reconcile.py   desired allowed list + participants vs what Janus has → actions (pure)
    health.py      SFU up/down with a retry window (pure)
    base.py        the `Sfu` protocol, SeatAccess, SFU errors
    janus_api.py   Janus HTTP API client (httpx): sessions, plugin handle, validated replies
    janus.py       JanusSfu: AudioBridge rooms, allowed lists, kicks, forwarders on janus_api
    livekit.py     LiveKitSfu: seat tokens as LiveKit access tokens (LiveKit verifies them itself)
    memory.py      MemorySfu: an in-memory AudioBridge twin for unit tests of the glue
    gate.py        SeatGate: admission hooks (grant, release) and the reconcile loop across workers
    factory.py     build_sfu(settings) → Sfu | None
    cli.py         `spillway sfu speaker --room ID`: a speaker's join credentials
"""
