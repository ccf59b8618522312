"""sync/ is the pure protocol: importing it must not import flask or sqlalchemy."""
import json
import subprocess
import sys


def test_sync_imports_neither_flask_nor_sqlalchemy():
    code = ("import json, sys, sync, sync.push, sync.pull, sync.store, sync.wire, sync.ops, sync.rules; "
            "print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in ('flask', 'sqlalchemy'))))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert json.loads(out) == []
