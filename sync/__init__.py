"""The Palier sync protocol as a pure package: wire types, push and pull, merge and duplicate rules.

Imports no flask and no sqlalchemy: storage plugs in through the Store protocol (see docs/PROTOCOL.md).
"""
from .pull import compute_pull, pull_pages
from .push import answer_replay, apply_push
from .store import DeviceState, InMemoryStore, LogEntry, Receipt, Store, WriteSet
from .wire import (MutationResult, Principal, ProtocolError, PullRequest, PullResult, PushRequest, PushResult,
                   parse_pull, parse_push, request_digest)

__all__ = ["answer_replay", "apply_push", "compute_pull", "pull_pages", "DeviceState", "InMemoryStore", "LogEntry", "Receipt",
           "Store", "WriteSet", "MutationResult", "Principal", "ProtocolError", "PullRequest", "PullResult", "PushRequest",
           "PushResult", "parse_pull", "parse_push", "request_digest"]
