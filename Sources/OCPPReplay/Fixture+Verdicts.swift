import OCPP
import OCPPSchema

extension Fixture {
    /// A recorded frame of the fixture that breaks its version's schema.
    public struct RecordedVerdict: Sendable, Hashable {
        /// The entry's number in the fixture (1 is the first after the header).
        public var entry: Int
        public var leg: String
        public var direction: String
        public var action: String
        public var reasons: [String]
    }

    /// The fixture's recorded frames judged as the relay judges them live: each leg against its version's schema,
    /// the peers' frames only. A fixture whose charger or backend spoke broken OCPP replays it as recorded.
    public var recordedVerdicts: [RecordedVerdict] {
        guard let version = OCPPVersion(name: header.version) else { return [] }
        var judge = ConversationJudge(
            chargerVersion: version,
            upstreamVersion: header.upstreamVersion.flatMap(OCPPVersion.init(name:))
        )
        var found: [RecordedVerdict] = []
        for (index, entry) in entries.enumerated() {
            guard let text = entry.text, let leg = entry.leg, leg == "charger" || leg == "upstream",
                let direction = entry.direction,
                let verdict = judge.judge(
                    Array(text.utf8),
                    leg: leg == "charger" ? .charger : .upstream,
                    receivedByRelay: direction == "in"
                ),
                verdict.verdict.isInvalid
            else { continue }
            found.append(
                RecordedVerdict(
                    entry: index + 1,
                    leg: leg,
                    direction: direction,
                    action: verdict.action,
                    reasons: verdict.verdict.reasons
                )
            )
        }
        return found
    }

    /// One line saying that the fixture named `name` holds invalid frames, with the first few; nil when it holds none.
    public func verdictNote(name: String, shown: Int = 3) -> String? {
        let verdicts = recordedVerdicts
        guard !verdicts.isEmpty else { return nil }
        let examples = verdicts.prefix(shown).map { verdict in
            "entry \(verdict.entry) (\(verdict.leg) \(verdict.direction)) \(verdict.action): "
                + verdict.reasons.joined(separator: "; ")
        }
        return
            "fixture \(name): \(verdicts.count) recorded frame(s) break their version's schema, replayed as recorded — "
            + examples.joined(separator: " · ") + (verdicts.count > shown ? " · …" : "")
    }
}
