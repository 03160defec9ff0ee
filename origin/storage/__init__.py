"""Object storage: the Storage protocol and its backends (filesystem, S3), plus the filesystem read router.

serve.build_storage_router is imported from origin.storage.serve directly (it pulls in FastAPI).
"""

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
