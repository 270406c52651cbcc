"""Replay at fleet scale: suites in parallel, one fixture as many chargers, a recorded fleet with its timing, the
rules a test author writes, and a replayed backend serving many chargers: all against the pinned `ocpp` package's
peers."""

import asyncio
import json
import subprocess
import xml.etree.ElementTree as ElementTree

from ocpp.routing import on
from ocpp.v16 import ChargePoint as ChargePoint16
from ocpp.v16 import call as call16
from ocpp.v16 import call_result as result16
from ocpp.v16.enums import Action as Action16
from websockets.asyncio.server import serve

from conftest import BINARY, ROOT
from peers import Backend, run_charger
from test_replay import cut, ocpp_relay, record_session

FIXTURES = ROOT / "Recordings" / "fixtures"


async def replay(*args, timeout=180):
    process = await asyncio.create_subprocess_exec(
        BINARY, "replay", *map(str, args), stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    stdout, stderr = await asyncio.wait_for(process.communicate(), timeout)
    return process.returncode, stdout.decode() + stderr.decode()


def frames(texts):
    return [json.loads(text) for text in texts]


def test_a_suite_of_the_shipped_fixtures_runs_in_parallel_with_one_junit_case_each(tmp_path):
    junit, report = tmp_path / "junit.xml", tmp_path / "report.json"
    suite = [FIXTURES / "charging-1.6.jsonl", FIXTURES / "charging-2.0.1.jsonl", FIXTURES / "demo-1.6.jsonl"]

    async def scenario():
        async with Backend() as backend:
            code, out = await replay(
                *suite, "--as", "charger", "--target", backend.url, "--parallel", "3",
                "--report", "junit", junit, "--report", "json", report,
            )
            return code, out, backend

    code, out, backend = asyncio.run(scenario())
    assert code == 0, out
    cases = ElementTree.parse(junit).getroot().findall(".//testcase")
    assert sorted(case.get("name") for case in cases) == ["charging-1.6", "charging-2.0.1", "demo-1.6"]
    assert all(case.find("failure") is None for case in cases)
    # In parallel: a second charger connected before the first one left.
    open_now, most = 0, 0
    for _, event in backend.timeline:
        open_now += 1 if event == "open" else -1
        most = max(most, open_now)
    assert most >= 2, backend.timeline
    figures = json.loads(report.read_text())
    assert figures["summary"]["runs"] == 3 and figures["summary"]["passed"] == 3
    assert "3 run(s): 3 passed" in out

    # A fixture made for a translating relay, replayed straight at a 1.6 backend, differs: its own case fails.
    async def with_a_failing_one():
        async with Backend() as backend:
            return await replay(
                *suite, FIXTURES / "translated-1.6-to-2.0.1.jsonl", "--as", "charger", "--target", backend.url,
                "--parallel", "2", "--report", "junit", junit,
            )

    code, out = asyncio.run(with_a_failing_one())
    assert code == 1, out
    failed = [c.get("name") for c in ElementTree.parse(junit).getroot().findall(".//testcase") if c.find("failure") is not None]
    assert failed == ["translated-1.6-to-2.0.1"], out
    assert "StopTransaction.result idTagInfo: expected (absent)" in out


def test_one_fixture_as_500_chargers_keeps_each_chargers_transaction(tmp_path):
    report = tmp_path / "load.json"

    async def scenario():
        async with Backend(subprotocols=["ocpp1.6"]) as backend:
            code, out = await replay(
                FIXTURES / "charging-1.6.jsonl", "--as", "charger", "--target", backend.url,
                "--chargers", "500", "--id-template", "LOAD-{n}", "--ramp", "2s", "--report", "json", report,
            )
            return code, out, backend

    code, out, backend = asyncio.run(scenario())
    assert code == 0, out[-3000:]
    assert sorted(backend.sessions) == sorted(f"LOAD-{n}" for n in range(1, 501))
    # Each charger stopped the transaction the backend handed it, not the recorded id nor another charger's.
    given = {}
    for identity, [(cp, tap)] in backend.sessions.items():
        sent, received = frames(tap.sent), frames(tap.received)
        start_ids = {m[1] for m in received if m[0] == 2 and m[2] == "StartTransaction"}
        (transaction,) = [m[2]["transactionId"] for m in sent if m[0] == 3 and m[1] in start_ids]
        (stopped,) = [m[3]["transactionId"] for m in received if m[0] == 2 and m[2] == "StopTransaction"]
        assert stopped == transaction, identity
        given[identity] = transaction
    assert len(set(given.values())) == 500
    # Each booted as itself: the recorded identity in its payloads (the serial number) became its own.
    assert all(boot["charge_point_serial_number"] == identity for identity, boot in backend.boots.items())
    # The JSON report's figures are what the backend saw.
    figures = json.loads(report.read_text())
    assert figures["summary"] == {**figures["summary"], "runs": 500, "passed": 500, "couldNotRun": 0, "exitCode": 0}
    actions = figures["actions"]
    assert actions["StartTransaction"]["roundTrips"] == len(backend.starts) == 500
    assert actions["MeterValues"]["roundTrips"] == len(backend.meter_values)
    assert actions["GetConfiguration"]["roundTrips"] == len(backend.answers) == 500
    received = sum(sum(1 for m in frames(tap.received) if m[0] == 2) for [(cp, tap)] in backend.sessions.values())
    charger_calls = sum(a["roundTrips"] for name, a in actions.items() if name != "GetConfiguration")
    assert charger_calls == received
    p50, p99 = actions["StartTransaction"]["answerTimeMs"]["p50"], actions["StartTransaction"]["answerTimeMs"]["p99"]
    assert 0 < p50 <= p99


def test_a_recorded_fleet_of_50_chargers_replays_with_its_timing(start_relay, tmp_path):
    # Record a fleet: 50 chargers connecting over 20 s, through the recording relay.
    async def record():
        async with Backend(subprotocols=["ocpp1.6"]) as backend:
            relay = start_relay(backend.url)
            code, out = await replay(
                FIXTURES / "charging-1.6.jsonl", "--as", "charger", "--target", relay.url,
                "--chargers", "50", "--id-template", "FLEET-{n}", "--ramp", "20s",
            )
            assert code == 0, out[-3000:]
            return relay

    relay = asyncio.run(record())
    assert relay.stop() == 0
    shown = ocpp_relay("recordings", "show", str(relay.recordings), "--format", "jsonl")
    assert shown.returncode == 0, shown.stderr
    recorded = {}
    for line in shown.stdout.splitlines():
        entry = json.loads(line)
        if entry.get("event") == "open":
            recorded.setdefault(entry["charger"], __import__("datetime").datetime.fromisoformat(entry["time"].replace("Z", "+00:00")))

    # Replay it as a fleet at 20 times the speed: 20 s of connections in 1 s, each at its place.
    async def scenario():
        async with Backend(subprotocols=["ocpp1.6"]) as backend:
            code, out = await replay(relay.recordings, "--fleet", "--as", "charger", "--target", backend.url, "--speed", "20")
            return code, out, backend

    code, out, backend = asyncio.run(scenario())
    assert code == 0, out[-3000:]
    assert sorted(backend.opened) == sorted(recorded) and len(recorded) == 50
    first = min(recorded, key=recorded.get)
    for identity, at in recorded.items():
        expected = (at - recorded[first]).total_seconds() / 20
        actual = backend.opened[identity] - backend.opened[first]
        # Recorded 20 s apart would be 1 s apart here; all at once would be 0: a quarter second says which.
        assert abs(actual - expected) < 0.25, (identity, expected, actual, out[-2000:])
    span = max(backend.opened.values()) - min(backend.opened.values())
    assert 0.7 < span < 1.4, (span, out[-2000:])


class ExtraAsking(Backend):
    """Asks GetConfiguration twice: the fixture has one."""

    async def _handle(self, connection):
        identity = connection.request.path.rstrip("/").split("/")[-1]

        async def ask_again():
            while not self.answers.get(identity):
                await asyncio.sleep(0.01)
            cp, _ = self.sessions[identity][-1]
            self.answers[identity] = [self.answers[identity], await cp.call(call16.GetConfiguration(key=["HeartbeatInterval"]))]

        task = asyncio.create_task(ask_again())
        await super()._handle(connection)
        task.cancel()


def test_each_rule_turns_a_failing_replay_into_a_passing_one(start_relay, tmp_path):
    def rules(text):
        path = tmp_path / f"rules-{abs(hash(text))}.yaml"
        path.write_text(text)
        return path

    fixture = FIXTURES / "charging-1.6.jsonl"

    class OtherInterval(Backend):
        def __init__(self):
            super().__init__(subprotocols=["ocpp1.6"])
            self.boot_interval = 60

    async def against(backend_class, *args):
        async with backend_class() as backend:
            code, out = await replay(fixture, "--as", "charger", "--target", backend.url, *args)
            return code, out, backend

    # severity: the boot's interval differs; as a warning it is reported and the replay passes.
    code, out, _ = asyncio.run(against(OtherInterval))
    assert code == 1 and "BootNotification.result interval: expected 300, got 60" in out
    code, out, _ = asyncio.run(against(OtherInterval, "--rules", rules("severity:\n  BootNotification.result: warn\n")))
    assert code == 0 and "warning: BootNotification.result interval: expected 300, got 60" in out, out

    # unexpected_calls: a second GetConfiguration the fixture lacks gets the fixture's answer to GetConfiguration;
    # fail fails the run, the default reports it, answer says nothing. (Slowed down, so that the second one comes
    # while the replay still runs.)
    slow = ("--speed", "0.1")
    code, out, backend = asyncio.run(against(ExtraAsking, *slow, "--rules", rules("unexpected_calls: fail\n")))
    assert code == 1 and "GetConfiguration: expected no such CALL at this point" in out, out
    (first, second), = backend.answers.values()
    assert second.configuration_key == first.configuration_key and second.configuration_key, backend.answers
    code, out, _ = asyncio.run(against(ExtraAsking, *slow))
    assert code == 0 and "warning: GetConfiguration: expected no such CALL" in out, out
    code, out, _ = asyncio.run(against(ExtraAsking, *slow, "--rules", rules("unexpected_calls: answer\n")))
    assert code == 0 and "no such CALL" not in out, out

    # match: subset: a fixture recorded through a translating relay has no idTagInfo in StopTransaction's answer;
    # a plain 1.6 backend adds one, which subset takes.
    translated = FIXTURES / "translated-1.6-to-2.0.1.jsonl"

    async def translated_against(*args):
        async with Backend(subprotocols=["ocpp1.6"]) as backend:
            return await replay(translated, "--as", "charger", "--target", backend.url, *args)

    code, out = asyncio.run(translated_against())
    assert code == 1 and "StopTransaction.result idTagInfo: expected (absent)" in out
    code, out = asyncio.run(translated_against("--rules", rules("match: subset\n")))
    assert code == 0, out

    bad = ocpp_relay("replay", str(fixture), "--as", "charger", "--target", "ws://127.0.0.1:9/ocpp", "--rules", rules("match: loose\n"))
    assert bad.returncode == 2 and "match: 'loose' is not exact or subset" in bad.stderr


def test_a_backend_that_closes_one_charger_mid_replay_ends_only_that_run(tmp_path):
    report = tmp_path / "report.json"

    class ClosingOne(Backend):
        async def _handle(self, connection):
            identity = connection.request.path.rstrip("/").split("/")[-1]

            async def close_after_start():
                while not self.sessions.get(identity) or "StartTransaction" not in self.sessions[identity][-1][0].actions:
                    await asyncio.sleep(0.01)
                await connection.close(1000)

            task = asyncio.create_task(close_after_start()) if identity == "LOAD-3" else None
            await super()._handle(connection)
            if task:
                task.cancel()

    async def scenario():
        async with ClosingOne(subprotocols=["ocpp1.6"]) as backend:
            return await replay(
                FIXTURES / "charging-1.6.jsonl", "--as", "charger", "--target", backend.url,
                "--chargers", "5", "--speed", "0.1", "--report", "json", report,
            )

    code, out = asyncio.run(scenario())
    assert code == 1, out
    runs = {run["charger"]: run for run in json.loads(report.read_text())["runs"]}
    assert [c for c, run in runs.items() if not run["passed"]] == ["LOAD-3"]
    assert any(d["kind"] == "closed" and "CALLs not sent" in d["got"] for d in runs["LOAD-3"]["differences"])


class Reserving(ChargePoint16):
    """A backend that reserves with id 5 and hands out transaction 7: the fixture recorded 1 for both."""

    def __init__(self, *args):
        super().__init__(*args)
        self.seen = []

    @on(Action16.boot_notification)
    async def on_boot(self, **kwargs):
        return result16.BootNotification(current_time="2030-01-01T00:00:00Z", interval=300, status="Accepted")

    @on(Action16.start_transaction)
    async def on_start(self, **kwargs):
        self.seen.append(("StartTransaction", kwargs))
        return result16.StartTransaction(transaction_id=7, id_tag_info={"status": "Accepted"})

    @on(Action16.stop_transaction)
    async def on_stop(self, **kwargs):
        self.seen.append(("StopTransaction", kwargs))
        return result16.StopTransaction()


def test_two_bound_fields_with_the_same_recorded_value_keep_their_own_live_values(tmp_path):
    def entry(second, direction, frame):
        return json.dumps({
            "time": f"2026-11-27T06:00:0{second}.000Z", "charger": "CP-BIND", "leg": "charger", "dir": direction,
            "version": "1.6", "text": json.dumps(frame),
        })

    fixture = tmp_path / "bind.jsonl"
    fixture.write_text("\n".join([
        json.dumps({"fixture": 1, "charger": "CP-BIND", "version": "1.6"}),
        entry(0, "in", [2, "1", "BootNotification", {"chargePointVendor": "V", "chargePointModel": "M"}]),
        entry(1, "out", [3, "1", {"status": "Accepted", "currentTime": "2026-11-27T06:00:01Z", "interval": 300}]),
        entry(2, "out", [2, "b", "ReserveNow", {"connectorId": 1, "expiryDate": "2026-11-27T07:00:00Z", "idTag": "T", "reservationId": 1}]),
        entry(3, "in", [3, "b", {"status": "Accepted"}]),
        entry(4, "in", [2, "2", "StartTransaction", {"connectorId": 1, "idTag": "T", "meterStart": 0, "timestamp": "2026-11-27T06:00:04Z", "reservationId": 1}]),
        entry(5, "out", [3, "2", {"idTagInfo": {"status": "Accepted"}, "transactionId": 1}]),
        entry(6, "in", [2, "3", "StopTransaction", {"transactionId": 1, "meterStop": 10, "timestamp": "2026-11-27T06:00:06Z"}]),
        entry(7, "out", [3, "3", {}]),
    ]) + "\n")
    backends = []

    async def handle(connection):
        cp = Reserving("CP-BIND", connection)
        backends.append(cp)
        task = asyncio.create_task(cp.start())
        await asyncio.sleep(0.2)
        await cp.call(call16.ReserveNow(connector_id=1, expiry_date="2026-11-27T07:00:00Z", id_tag="T", reservation_id=5))
        try:
            await task
        except Exception:
            pass

    async def scenario():
        async with serve(handle, "127.0.0.1", 0, subprotocols=["ocpp1.6"]) as server:
            port = server.sockets[0].getsockname()[1]
            return await replay(fixture, "--as", "charger", "--target", f"ws://127.0.0.1:{port}/ocpp")

    code, out = asyncio.run(scenario())
    assert code == 0, out
    (cp,) = backends
    assert cp.seen[0] == ("StartTransaction", {**cp.seen[0][1], "reservation_id": 5})
    assert cp.seen[1][1]["transaction_id"] == 7


def test_a_replayed_backend_serves_20_chargers_at_once(start_relay, tmp_path):
    # Record 20 chargers at once through the relay.
    async def record():
        async with Backend(subprotocols=["ocpp1.6"]) as backend:
            relay = start_relay(backend.url)
            await asyncio.gather(*(run_charger(relay.url, f"CP-SERVE-{n}", "1.6") for n in range(20)))
            for n in range(20):
                await backend.closed(f"CP-SERVE-{n}")
            return relay

    relay = asyncio.run(record())
    assert relay.stop() == 0

    # Replay the backend of every one of them; the same 20 chargers connect at once.
    async def scenario():
        process = await asyncio.create_subprocess_exec(
            BINARY, "replay", str(relay.recordings), "--as", "backend", "--listen", "127.0.0.1:0",
            "--accept-timeout", "60", stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )
        line = (await asyncio.wait_for(process.stdout.readline(), 30)).decode()
        assert line.startswith("listening on "), line
        url = line.split()[-1] + "/ocpp"
        sessions = await asyncio.gather(*(run_charger(url, f"CP-SERVE-{n}", "1.6") for n in range(20)))
        stdout, stderr = await asyncio.wait_for(process.communicate(), 60)
        return process.returncode, stdout.decode() + stderr.decode(), sessions

    code, out, sessions = asyncio.run(scenario())
    assert code == 0, out
    assert "20 run(s): 20 passed" in out
    for results, tap, _ in sessions:
        assert all(r is not None for r in results)
        assert any('"GetConfiguration"' in m for m in tap.received)
