"""The schema facts built into the binary are what the generator derives from the pinned `ocpp` package's official
schemas: nobody edited them by hand, and a new pin regenerates them."""

import pathlib
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parents[2]


def test_the_built_in_schema_facts_are_generated_from_the_pinned_schemas():
    generator = ROOT / "Sources" / "OCPPSchema" / "generate_facts.py"
    check = subprocess.run([sys.executable, str(generator), "--check"], capture_output=True, text=True, timeout=120)
    assert check.returncode == 0, check.stdout + check.stderr
