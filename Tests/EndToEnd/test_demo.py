"""The README's first command: `ocpp-relay demo` runs with nothing else, and every frame its built-in
peers exchange is valid against the official OCA JSON schemas."""

import json
import pathlib
import subprocess

import jsonschema
import ocpp
from conftest import BINARY, ROOT, recordings_show

SCHEMAS = pathlib.Path(ocpp.__file__).parent


def schema(version, action, response):
    if version == "1.6":
        name = f"{action}Response.json" if response else f"{action}.json"
        return json.loads((SCHEMAS / "v16" / "schemas" / name).read_text())
    name = f"{action}{'Response' if response else 'Request'}.json"
    return json.loads((SCHEMAS / "v201" / "schemas" / name).read_text())


def test_demo_runs_and_its_traffic_is_schema_valid(tmp_path):
    out = subprocess.run(
        [BINARY, "demo", "--recordings", str(tmp_path / "rec")], capture_output=True, text=True, timeout=120, cwd=ROOT
    )
    assert out.returncode == 0, out.stderr
    assert "charger DEMO-CP-16 (ocpp1.6): 11 calls answered, 0 rejected, 1 backend requests answered" in out.stdout
    assert "charger DEMO-CP-201 (ocpp2.0.1): 10 calls answered, 0 rejected, 1 backend requests answered" in out.stdout
    assert "BootNotification.result" in out.stdout
    # The shipped fixture of the demo's 1.6 session replays through the relay against the demo backend.
    assert "replay of Recordings/fixtures/demo-1.6.jsonl as the charger: passed" in out.stdout

    entries, warnings = recordings_show(tmp_path / "rec")
    assert warnings == ""
    pending = {}
    checked = 0
    for e in entries:
        if "text" not in e or e["dir"] != "in":
            continue
        frame = json.loads(e["text"])
        if frame[0] == 2:
            pending[(e["connection"], e["leg"], frame[1])] = frame[2]
            jsonschema.validate(frame[3], schema(e["version"], frame[2], response=False))
        else:
            assert frame[0] == 3, e["text"]
            other = "upstream" if e["leg"] == "charger" else "charger"
            action = pending.pop((e["connection"], other, frame[1]))
            jsonschema.validate(frame[2], schema(e["version"], action, response=True))
        checked += 1
    # Two scripted sessions (24 + 22 frames) and the replayed 1.6 one (24), every frame schema-valid.
    assert checked == 24 + 22 + 24 and not pending
