import OCPP
import OCPPTranslation

/// An engine driven as the relay drives it, with a store that writes at once: a state to persist comes first, then
/// the frames that waited for it, in one list per event.
struct Driven {
    var engine: any VersionTranslation

    /// A 1.6 charger on a 2.0.1 backend (`reverse`: a 2.0.1 charger on a 1.6 backend), with deterministic ids and
    /// clock (``IDs``).
    init(
        reverse: Bool,
        state: ChargerState = ChargerState(),
        ids: IDs,
        now: String = "2026-11-27T06:00:00Z",
        options: TranslationOptions = .init()
    ) {
        self.init(
            charger: reverse ? .v201 : .v16,
            upstream: reverse ? .v16 : .v201,
            state: state,
            ids: ids,
            now: now,
            options: options
        )
    }

    /// A `charger` charger on an `upstream` backend.
    init(
        charger: OCPPVersion,
        upstream: OCPPVersion,
        state: ChargerState = ChargerState(),
        ids: IDs,
        now: String = "2026-11-27T06:00:00Z",
        options: TranslationOptions = .init()
    ) {
        let clock = TranslationClock(
            now: { now },
            uptime: { .milliseconds(Int64(ids.uptime * 1000)) },
            makeID: { ids.make() }
        )
        engine = Translations.engine(
            charger: charger,
            upstream: upstream,
            identity: charger == .v16 ? "CP-TEST" : "CS-TEST",
            tables: Repository.tables(),
            state: state,
            clock: clock,
            options: options
        )!
    }

    var state: ChargerState { engine.state }

    mutating func started() -> [TranslationOutput] { settle(engine.started()) }
    mutating func fromCharger(_ text: String) -> [TranslationOutput] { settle(engine.fromCharger(text)) }
    mutating func fromUpstream(_ text: String) -> [TranslationOutput] { settle(engine.fromUpstream(text)) }
    /// Time passed (the call timeout is 30 s).
    mutating func tick() -> [TranslationOutput] { settle(engine.tick()) }
    mutating func chargerLeft() -> [TranslationOutput] { settle(engine.chargerLeft()) }

    private mutating func settle(_ outputs: [TranslationOutput]) -> [TranslationOutput] {
        var all = outputs
        for case .persist(_, let write) in outputs {
            all += engine.stored(write).flatMap(\.outputs)
        }
        return all
    }
}
