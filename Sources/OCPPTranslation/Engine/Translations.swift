import OCPP

/// The version pairs the engine translates, each a rule set of the one ``TranslationEngine``: 1.6 and 2.0.1 by
/// their own rules, and each pair with an OCPP 2.1 peer as the 2.0.1 rules beside the 2.1 step (``VersionStep``).
public enum Translations {
    /// The engine for a charger speaking `charger` on a backend speaking `upstream`; `nil` for a pair the relay
    /// does not translate.
    ///
    /// - Parameters:
    ///   - state: the charger's stored state (each pair reads its part).
    ///   - options: what the peers implement beyond the core protocol, and the early StartTransaction answer.
    ///   - callTimeout: how long a CALL may wait for its answer.
    public static func engine(
        charger: OCPPVersion,
        upstream: OCPPVersion,
        identity: String,
        tables: MappingTables,
        state: ChargerState,
        clock: TranslationClock,
        options: TranslationOptions = .init(),
        callTimeout: Duration = .seconds(30)
    ) -> (any VersionTranslation)? {
        let setup = RuleSetup(tables: tables, options: options, clock: clock)
        func engine<Rules: TranslationRules>(_ rules: Rules, step: Side? = nil) -> any VersionTranslation {
            TranslationEngine(
                identity: identity,
                rules: rules,
                step: step,
                state: state,
                clock: clock,
                callTimeout: callTimeout
            )
        }
        switch (charger, upstream) {
        case (.v16, .v201): return engine(ForwardRules(setup: setup))
        case (.v201, .v16): return engine(ReverseRules(setup: setup))
        case (.v21, .v201): return engine(SameRules(setup: setup), step: .charger)
        case (.v201, .v21): return engine(SameRules(setup: setup), step: .upstream)
        case (.v21, .v16): return engine(ReverseRules(setup: setup), step: .charger)
        case (.v16, .v21): return engine(ForwardRules(setup: setup), step: .upstream)
        case (.v16, .v16), (.v201, .v201), (.v21, .v21): return nil
        }
    }
}
