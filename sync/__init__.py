"""The Palier sync protocol as a pure package: wire types, push and pull, merge and duplicate rules.

Imports no flask and no sqlalchemy: storage plugs in through the Store protocol (see docs/PROTOCOL.md).
"""
