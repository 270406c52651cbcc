"""The README's first command: `ocpp-relay demo` runs with nothing else (from any folder), shows a 1.6 charger
translated for a 2.0.1 backend, and every frame its built-in peers exchange is valid against the official OCA JSON
schemas."""

import subprocess

from conftest import BINARY, ROOT, recordings_show
from test_translation import validate_recording


def test_demo_runs_and_its_traffic_is_schema_valid(tmp_path):
    out = subprocess.run(
        [BINARY, "demo", "--recordings", str(tmp_path / "rec")], capture_output=True, text=True, timeout=120, cwd=ROOT
    )
    assert out.returncode == 0, out.stderr
    assert "charger DEMO-CP-16 (ocpp1.6): 11 calls answered, 0 rejected, 1 backend requests answered" in out.stdout
    assert "charger DEMO-CP-201 (ocpp2.0.1): 10 calls answered, 0 rejected, 1 backend requests answered" in out.stdout
    assert "charger DEMO-CP-16-ON-201 (ocpp1.6): 11 calls answered, 0 rejected, 1 backend requests answered" in out.stdout
    # A 2.1 station crosses the 2.1 step to the same 2.0.1 backend.
    assert "charger DEMO-CS-21-ON-201 (ocpp2.1): 10 calls answered, 0 rejected, 1 backend requests answered" in out.stdout
    assert "BootNotification.result" in out.stdout
    # The shipped fixture of the demo's 1.6 session replays through the relay against the demo backend.
    assert "replay of Recordings/fixtures/demo-1.6.jsonl as the charger: passed" in out.stdout
    # The printed recording shows the translated charger's 1.6 StartTransaction and the 2.0.1 TransactionEvent
    # the relay made of it, each with its answer named.
    lines = [line for line in out.stdout.splitlines() if "DEMO-CP-16-ON-2" in line]
    assert any("charger → relay" in line and "StartTransaction " in line for line in lines)
    assert any("relay → upstream" in line and "TransactionEvent " in line and '"Started"' in line for line in lines)
    assert any("relay → charger" in line and "StartTransaction.result" in line for line in lines)
    assert not any("?.result" in line for line in out.stdout.splitlines())

    entries, warnings = recordings_show(tmp_path / "rec")
    assert warnings == ""
    checked = validate_recording(entries)
    # Three scripted sessions, the translated one on both legs, and the replayed 1.6 session: every frame
    # schema-valid, none answered with a CALLERROR.
    translated = [e for e in entries if "text" in e and e["charger"] == "DEMO-CP-16-ON-201"]
    assert {e["version"] for e in translated} == {"1.6", "2.0.1"}
    stepped = [e for e in entries if "text" in e and e["charger"] == "DEMO-CS-21-ON-201"]
    assert {e["version"] for e in stepped} == {"2.1", "2.0.1"}
    assert checked["1.6"] >= 24 * 2 and checked["2.0.1"] >= 22


def test_the_installed_binary_translates_from_any_folder(tmp_path):
    """The mapping tables are built into the binary: no Mappings/ folder is needed where it runs."""
    out = subprocess.run([BINARY, "demo", "--recordings", str(tmp_path / "rec")], capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert "charger DEMO-CP-16-ON-201 (ocpp1.6): 11 calls answered, 0 rejected" in out.stdout
    exported = subprocess.run([BINARY, "mappings", "export", "tables"], capture_output=True, text=True, cwd=tmp_path)
    assert exported.returncode == 0, exported.stderr
    for name in ("messages.yaml", "enums.yaml", "configuration-keys.yaml", "tokens.yaml", "topology.yaml"):
        assert (tmp_path / "tables" / name).read_text() == (ROOT / "Mappings" / name).read_text()
    again = subprocess.run([BINARY, "mappings", "export", "tables"], capture_output=True, text=True, cwd=tmp_path)
    assert again.returncode != 0 and "exists; pass --force" in again.stderr
    (tmp_path / "tables" / "enums.yaml").write_text("this: [is not: a table\n")
    broken = subprocess.run([BINARY, "mappings", "check", "tables"], capture_output=True, text=True, cwd=tmp_path)
    assert broken.returncode == 1
    built_in = subprocess.run([BINARY, "mappings", "check"], capture_output=True, text=True, cwd=tmp_path)
    assert built_in.returncode == 0 and "mappings OK" in built_in.stdout
    shown = subprocess.run([BINARY, "mappings", "show"], capture_output=True, text=True, cwd=tmp_path)
    assert "TransactionEvent (transform startTransaction)" in shown.stdout
