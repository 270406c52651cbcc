import OCPP

/// The version pairs the engine translates, each a rule set of the one ``TranslationEngine``.
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
        switch (charger, upstream) {
        case (.v16, .v201):
            TranslationEngine(
                identity: identity,
                rules: ForwardRules(setup: RuleSetup(tables: tables, options: options, clock: clock)),
                state: state,
                clock: clock,
                callTimeout: callTimeout
            )
        case (.v201, .v16):
            TranslationEngine(
                identity: identity,
                rules: ReverseRules(setup: RuleSetup(tables: tables, options: options, clock: clock)),
                state: state,
                clock: clock,
                callTimeout: callTimeout
            )
        default:
            nil
        }
    }
}
