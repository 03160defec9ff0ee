"""The origin fleet: several origin instances behind one load balancer, sharing Redis and S3.

    keys.py        Redis key names (one hash tag per room) and the Redis error mapping
    journal.py     RedisJournal: the room journal as a Redis list, cross-instance locks, fenced appends
    lease.py       ownership leases with fencing tokens, renewed in the background
    fencing.py     FencedStorage: an owner's playlist writes are S3 conditional PUTs chained on ETags
    spool.py       RedisSpool: objects S3 refused, kept in Redis so any instance's owner can upload them
    doorbell.py    rings to a room's owner wherever it runs (Redis pub/sub)
    durability.py  what a 201 waits for (Redis persistence, or replicas acknowledging with WAIT)

Any instance serves any call: ingest writes the object to S3 and appends its record to the shared journal;
the room's owner (whoever holds its lease) decides and writes playlists. docs/origin.md ("Fleet") tells the
whole story; origin/coordination.py picks this or the single-host parts from settings.
"""
