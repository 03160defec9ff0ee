"""Where a room's journal lives: append-only records every worker folds into the same room state.

    base.py    the `Journal` interface and `Ownership` (one publisher per room)
    files.py   one file per room under the state directory (one host, any number of workers)
    memory.py  the in-memory twin for unit tests
"""
