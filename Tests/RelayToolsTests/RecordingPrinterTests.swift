import OCPP
import RelayRecording
import RelayTools
import Testing

@Suite("Recording printer")
struct RecordingPrinterTests {
    private func frame(_ text: String, leg: Leg, at time: UInt64) -> Record {
        .frame(
            FrameRecord(
                connection: 1,
                time: time,
                leg: leg,
                direction: .in,
                opcode: 1,
                payload: Array(text.utf8),
                forwardedUnchanged: true
            )
        )
    }

    private var records: [Record] {
        [
            .segmentHeader(SegmentHeader(relayVersion: "t", runID: "run", loop: 0, sequence: 1, time: 1_000_000)),
            .open(
                ConnectionOpen(
                    connection: 1,
                    time: 1_795_759_200_000_000,
                    charger: "CP-1",
                    path: "/ocpp/CP-1",
                    offeredSubprotocols: ["ocpp1.6"],
                    subprotocol: "ocpp1.6",
                    remoteAddress: "10.0.0.1:5000",
                    upstreamURL: "ws://b/ocpp/CP-1"
                )
            ),
            frame(#"[2,"42","Heartbeat",{}]"#, leg: .charger, at: 1_795_759_200_123_456),
            frame(#"[3,"42",{"currentTime":"x"}]"#, leg: .upstream, at: 1_795_759_200_200_000),
            .close(
                ConnectionClose(
                    connection: 1,
                    time: 1_795_759_201_000_000,
                    leg: .charger,
                    initiator: "charger",
                    code: 1000,
                    reason: ""
                )
            ),
        ]
    }

    @Test("jsonl: one object per line, a forwarded frame on both legs, RFC 3339 milliseconds")
    func jsonl() throws {
        var printer = RecordingPrinter(format: .jsonl)
        let lines = records.flatMap { printer.lines(for: $0) }
        #expect(lines.count == 6)
        let values = try lines.map { try JSONParser.parse($0) }
        #expect(values[0]["event"] == .string("open"))
        #expect(values[1]["time"] == .string("2026-11-27T06:00:00.123Z"))
        #expect(values[1]["leg"] == .string("charger") && values[1]["dir"] == .string("in"))
        #expect(values[2]["leg"] == .string("upstream") && values[2]["dir"] == .string("out"))
        #expect(values[1]["text"] == .string(#"[2,"42","Heartbeat",{}]"#))
        #expect(values[1]["version"] == .string("1.6"))
        #expect(values[1]["connection"] == .string("run/1"))
        #expect(values[5]["event"] == .string("close") && values[5]["code"] == .number("1000"))
    }

    @Test("text names the action of a result, from its CALL in the other direction")
    func text() {
        var printer = RecordingPrinter(format: .text)
        let lines = records.flatMap { printer.lines(for: $0) }
        #expect(lines.count == 4)
        #expect(lines[1].contains("charger → upstream") && lines[1].contains("Heartbeat 42"))
        #expect(lines[2].contains("upstream → charger") && lines[2].contains("Heartbeat.result 42"))
        #expect(!lines.joined().contains("\u{1B}["))
        var colored = RecordingPrinter(format: .text, color: true)
        var coloredLines: [String] = []
        for record in records { coloredLines += colored.lines(for: record) }
        #expect(coloredLines.joined(separator: "\n").contains("\u{1B}["))
    }

    @Test("--charger keeps only that charger")
    func filter() {
        var printer = RecordingPrinter(format: .jsonl, charger: "CP-2")
        #expect(records.flatMap { printer.lines(for: $0) }.isEmpty)
    }
}
