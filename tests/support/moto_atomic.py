"""moto's S3 server with object PUTs serialised, run as a script: `python moto_atomic.py -H 127.0.0.1 -p PORT`.

moto checks a conditional PUT's If-Match / If-None-Match and then writes, in two steps; under load a request
can pass the check, wait, and write after a newer version. S3 checks and writes atomically (the fencing in
origin/fleet/fencing.py relies on it), so the fleet tests run moto with one lock around each object PUT.
"""

from __future__ import annotations

import sys
import threading
from typing import Any

import moto.s3.responses
from moto.server import main

_lock = threading.Lock()
_put_object = moto.s3.responses.S3Response.put_object


def _atomic_put_object(self: Any) -> Any:
    with _lock:
        return _put_object(self)


moto.s3.responses.S3Response.put_object = _atomic_put_object  # type: ignore[method-assign]

if __name__ == "__main__":
    sys.exit(main())
