"""The contract between the transcoder, the origin and listeners — one copy, imported by both packages.

    ids.py           strict ASCII patterns for every identifier that reaches a key, a path or a URL
    ingest.py        the ingest calls' bodies and limits (segment length, ladder, body caps)
    layout.py        object keys under the storage prefix, and the URIs playlists use between them
    cache_policy.py  Content-Type and Cache-Control of every published object and listener page

Pure: no I/O, no clock. Anything that crosses a process boundary is described here first.
"""
