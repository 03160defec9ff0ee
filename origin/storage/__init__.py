"""Object storage: the Storage protocol and its backends (filesystem, S3). The filesystem backend's HTTP read
path is a web route (origin/web/objects.py)."""

from origin.storage.base import Storage
from origin.storage.factory import build_storage
from origin.storage.filesystem import FilesystemStorage
from origin.storage.keys import validate_key, validate_prefix
from origin.storage.retry import ErrorClass, RetryPolicy
from origin.storage.s3 import S3Storage

__all__ = [
    "ErrorClass",
    "FilesystemStorage",
    "RetryPolicy",
    "S3Storage",
    "Storage",
    "build_storage",
    "validate_key",
    "validate_prefix",
]
