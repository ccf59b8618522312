"""The Palier sync protocol as a pure package: wire types, push and pull, merge and duplicate rules.

Imports no flask and no sqlalchemy: storage plugs in through the Store protocol (see docs/PROTOCOL.md).
"""
from .pull import compute_pull
from .push import apply_push
from .store import DeviceState, InMemoryStore, LogEntry, Store, WriteSet
from .wire import (MutationResult, Principal, ProtocolError, PullResult, PushRequest, PushResult, parse_pull,
                   parse_push)

__all__ = ["apply_push", "compute_pull", "DeviceState", "InMemoryStore", "LogEntry", "Store", "WriteSet",
           "MutationResult", "Principal", "ProtocolError", "PullResult", "PushRequest", "PushResult", "parse_pull",
           "parse_push"]
