"""The origin's HTTP edge: routes, the one error mapper, credentials. Services below do the work.

    app.py        create_app: settings → storage, journal, services → routers
    errors.py     every 4xx/5xx body: {"error": <code>, "detail": <message or object>} (documented once)
    auth.py       bearer credentials (admin, ingest) and bounded request bodies
    ingest.py     /ingest/{room}/{session}/…            the transcoder's calls (docs/ingest.md)
    admin.py      /v1/rooms…                            rooms, broadcast end, delete (admin token)
    listeners.py  /v1/rooms/{room}/listeners…           real-time seat or HLS (docs/admission.md)
    health.py     /healthz, /readyz, /metrics
The player's pages (/embed, /oembed, /static/player) are origin/player's router.
"""
