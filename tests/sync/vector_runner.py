"""Runs the shared vectors (sync/vectors/*.json) against a backend: the in-memory store or the HTTP API.

A vector: {"name", "setup": {sites, users, devices, households, residents, actions, events},
"steps": [{"device", "push": [mutation...] | "pull": true, "expect": {...}}], "final": {...}}.
In args, the string "$seen:<id>" is the seq of that record in the device's replica (its base_seq).
Each device keeps a replica built only from its pulls, as a phone would.
"""
import json
from pathlib import Path

VECTORS_DIR = Path(__file__).resolve().parents[2] / "sync" / "vectors"


def load_vectors():
    return [json.loads(p.read_text()) for p in sorted(VECTORS_DIR.glob("*.json"))]


def page_changes(body) -> list[dict]:
    """A pull answer's changes as a device reads them, in either page format (written from docs/PROTOCOL.md, apart
    from the server's sync.wire.expand_change): format 2's rows [entity, id, seq, values in fields order] and
    tombstones [entity, id, seq, null, merged_into?] as format 1's objects."""
    if body.get("format", 1) == 1:
        return body["changes"]
    out = []
    for entity, rec_id, seq, values, *merged in body["changes"]:
        ch = {"entity": entity, "id": rec_id, "seq": seq, "deleted": values is None,
              "data": None if values is None else dict(zip(body["fields"][entity], values, strict=True))}
        out.append({**ch, "merged_into": merged[0]} if merged else ch)
    return out


class Device:
    def __init__(self, key, client_id, user):
        self.key, self.client_id, self.user = key, client_id, user
        self.cursor = None
        self.replica: dict[tuple, dict] = {}

    def apply_pull(self, body):
        if body["reset"]:
            self.replica.clear()
        for ch in page_changes(body):
            if ch["deleted"]:
                self.replica.pop((ch["entity"], ch["id"]), None)
            else:
                self.replica[(ch["entity"], ch["id"])] = {"seq": ch["seq"], **ch["data"]}
        self.cursor = body["cursor"]


def _resolve(value, device):
    if isinstance(value, str) and value.startswith("$seen:"):
        rec_id = value[len("$seen:"):]
        return next((r["seq"] for (e, i), r in device.replica.items() if i == rec_id), 0)
    if isinstance(value, dict):
        return {k: _resolve(v, device) for k, v in value.items()}
    if isinstance(value, list):
        return [_resolve(v, device) for v in value]
    return value


def _result_view(r):
    out = {"n": r["n"], "status": r["status"]}
    if "reason" in r:
        out["reason"] = r["reason"]["code"]
    if r.get("conflicts"):
        out["conflicts"] = r["conflicts"]
    if r.get("replayed"):
        out["replayed"] = True
    return out


def _subset(expected: dict, actual: dict, where: str):
    for k, v in expected.items():
        assert k in actual, f"{where}: {k} missing in {actual}"
        assert actual[k] == v, f"{where}: {k} is {actual[k]!r}, expected {v!r}"


def run_vector(vector, backend, page_format=1):
    """backend: setup(setup) -> {device key: (client_id, user key)}; push(device, body) -> (status, json);
    pull(device, body) -> (status, json); record(entity, id) -> wire dict or None; conflicts(); rejections();
    suspicions(); engaged(). page_format: the pull page format the devices ask for (docs/PROTOCOL.md)."""
    devices = {k: Device(k, cid, user) for k, (cid, user) in backend.setup(vector["setup"]).items()}
    for i, step in enumerate(vector["steps"]):
        where = f"{vector['name']} step {i}"
        dev = devices[step["device"]]
        expect = step.get("expect", {})
        if "push" in step:
            body = {"client_id": dev.client_id, "app_version": "vectors", "pending": len(step["push"]),
                    "mutations": _resolve(step["push"], dev)}
            status, resp = backend.push(dev, body)
            assert status == expect.get("status", 200), f"{where}: {status} {resp}"
            if status != 200:
                _subset({"code": expect["error"], **({"details": expect["details"]} if "details" in expect else {})},
                        resp["error"], where)
                continue
            if "results" in expect:
                assert [_result_view(r) for r in resp["results"]] == expect["results"], f"{where}: {resp}"
            if "last_applied" in expect:
                assert resp["last_applied"] == expect["last_applied"], where
        else:
            status, resp, first = 200, None, True
            while True:
                body = {"client_id": dev.client_id, "cursor": dev.cursor, "limit": step.get("limit", 500)}
                if page_format != 1:
                    body["format"] = page_format
                status, resp = backend.pull(dev, body)
                assert status == expect.get("status", 200), f"{where}: {status} {resp}"
                if status != 200:
                    break
                assert resp.get("format", 1) == page_format, where
                if page_format == 2:  # the programme figure comes with a pull's last page only
                    assert (resp["progress"] is None) == resp["has_more"], where
                if first and "reset" in expect:
                    assert resp["reset"] == expect["reset"], where
                first = False
                dev.apply_pull(resp)
                if not resp["has_more"]:
                    break
            if status != 200:
                continue
            if "last_applied" in expect:
                assert resp["last_applied"] == expect["last_applied"], where
            for item in expect.get("contains", []):
                rec = dev.replica.get((item["entity"], item["id"]))
                assert rec is not None, f"{where}: {item['entity']} {item['id']} not on {dev.key}"
                _subset(item.get("data", {}), rec, where)
                for f in item.get("absent_fields", []):
                    assert f not in rec, f"{where}: {f} must not reach {dev.key}"
            for item in expect.get("absent", []):
                assert (item["entity"], item["id"]) not in dev.replica, f"{where}: {item} reached {dev.key}"
            if "count" in expect:
                for entity, n in expect["count"].items():
                    got = sum(1 for (e, _i) in dev.replica if e == entity)
                    assert got == n, f"{where}: {dev.key} holds {got} {entity}, expected {n}"
    final = vector.get("final", {})
    for item in final.get("records", []):
        rec = backend.record(item["entity"], item["id"])
        if item.get("missing"):
            assert rec is None, f"{vector['name']}: {item['id']} exists"
            continue
        assert rec is not None, f"{vector['name']}: {item['entity']} {item['id']} missing on the server"
        _subset(item.get("data", {}), rec, vector["name"] + " final")
    if "conflicts" in final:
        got = sorted((c["entity"], c["entity_id"], c["field"], json.dumps(c["kept_value"]),
                      json.dumps(c["lost_value"])) for c in backend.conflicts())
        want = sorted((c["entity"], c["entity_id"], c["field"], json.dumps(c["kept_value"]),
                       json.dumps(c["lost_value"])) for c in final["conflicts"])
        assert got == want, vector["name"]
    if "rejections" in final:
        client_of = {k: d.client_id for k, d in devices.items()}
        got = sorted((r["client_id"], r["n"], r["code"]) for r in backend.rejections())
        want = sorted((client_of[r["device"]], r["n"], r["code"]) for r in final["rejections"])
        assert got == want, vector["name"]
    if "suspicions" in final:
        got = sorted((s["resident_id"], s["candidate_id"]) for s in backend.suspicions())
        assert got == sorted((s["resident_id"], s["candidate_id"]) for s in final["suspicions"]), vector["name"]
    if "engaged" in final:
        assert backend.engaged() == final["engaged"], vector["name"]
    if final.get("converged"):
        # Every device, pulled to the end, holds exactly what the server says its scope holds.
        for dev in devices.values():
            for (entity, rec_id), rec in dev.replica.items():
                server = backend.record(entity, rec_id)
                assert server is not None and not server["deleted"], f"{dev.key} holds a dead {entity} {rec_id}"
                for k, v in rec.items():
                    if k != "seq":
                        assert server.get(k) == v, f"{dev.key}: {entity}.{k} {v!r} != server {server.get(k)!r}"
    return devices
