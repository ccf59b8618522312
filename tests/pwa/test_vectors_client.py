"""The shared vectors on the CLIENT side: each vector runs once through the protocol (the in-memory store, as
tests/sync does), every push and pull answer is recorded, then node replays the answers to the PWA's own sync
client (pwa/src/sync/client.js over fake-indexeddb) and checks what the phone does with them: the requests it
sends (cursor, $seen -> base_seq from its own replica), outbox trimming by last_applied, rejected reasons kept,
conflicts listed, mutation_gap renumbering, reset, and a replica equal to the Python device's."""
import json
import subprocess
from pathlib import Path

import pytest

from tests.sync.test_vectors_memory import MemoryBackend
from tests.sync.vector_runner import load_vectors, run_vector

VECTORS = load_vectors()
REPLAY = Path(__file__).with_name("vectors_replay.mjs")


class Recording:
    """Delegates to a backend and keeps every exchange, in order."""

    def __init__(self, backend):
        self.backend, self.exchanges = backend, []

    def __getattr__(self, name):
        return getattr(self.backend, name)

    def _keep(self, kind, dev, body, answer):
        status, resp = answer
        self.exchanges.append({"kind": kind, "device": dev.key, "request": body, "status": status, "response": resp})
        return answer

    def push(self, dev, body):
        return self._keep("push", dev, json.loads(json.dumps(body)), self.backend.push(dev, body))

    def pull(self, dev, body):
        return self._keep("pull", dev, dict(body), self.backend.pull(dev, body))


def transcript(vector, page_format):
    rec = Recording(MemoryBackend())
    devices = run_vector(vector, rec, page_format)
    exchanges, steps = iter(rec.exchanges), []
    for step in vector["steps"]:
        taken = [next(exchanges)]
        while "pull" in step and taken[-1]["status"] == 200 and taken[-1]["response"]["has_more"]:
            taken.append(next(exchanges))
        steps.append({**step, "exchanges": taken})
    assert next(exchanges, None) is None
    replicas = {k: [{"entity": e, "id": i, "record": r} for (e, i), r in d.replica.items()]
                for k, d in devices.items()}
    return {"name": vector["name"], "devices": {d["key"]: d["client_id"] for d in vector["setup"]["devices"]},
            "steps": steps, "replicas": replicas}


# 2: the answers to what the PWA asks for (pwa/src/sync/client.js); 1: an older server's, which it still reads.
@pytest.mark.parametrize("page_format", [2, 1])
@pytest.mark.parametrize("vector", VECTORS, ids=[v["name"] for v in VECTORS])
def test_vector_answers_drive_the_pwa_client(vector, page_format, tmp_path):
    path = tmp_path / f"{vector['name']}.json"
    path.write_text(json.dumps(transcript(vector, page_format), default=str))
    proc = subprocess.run(["node", str(REPLAY), str(path)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert f"replayed {vector['name']}:" in proc.stdout
