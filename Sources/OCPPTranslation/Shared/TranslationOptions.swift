/// What a translation may assume about its peers beyond the core protocol, and how it answers: settings of the
/// relay's configuration (`upstream_extensions`, `translation.early_start_answer`), the same for every charger of
/// a route.
public struct TranslationOptions: Sendable, Hashable {
    /// The 1.6 backend implements the OCA's 1.6 Security Whitepaper (SecurityEventNotification, SignCertificate,
    /// LogStatusNotification, SignedFirmwareStatusNotification). Without it those messages of a 2.0.1 charger are
    /// answered by the relay (and recorded as lossy).
    public var upstreamSecurity = false
    /// The 1.6 backend speaks Plug & Charge over DataTransfer (the OCA's ISO 15118 whitepaper). Without it a 2.0.1
    /// charger's Plug & Charge messages get the relay's refusal, and its contract Authorize goes as a plain one.
    public var upstreamPlugAndCharge = false
    /// A 1.6 charger's StartTransaction is answered at once (Accepted, with its transaction id) instead of when the
    /// 2.0.1 backend answers the TransactionEvent; a verdict other than Accepted then stops the transaction
    /// (RemoteStopTransaction). For backends slower than the charger's StartTransaction timeout.
    public var answerStartEarly = false
    /// Frequent messages are translated from their bytes where they allow it (``ForwardRules/lightMeterValues(_:_:)``)
    /// rather than through trees. Not a setting: `false` is the reference the differential tests hold the light path
    /// to.
    public var lightPath = true

    public init(
        upstreamSecurity: Bool = false,
        upstreamPlugAndCharge: Bool = false,
        answerStartEarly: Bool = false,
        lightPath: Bool = true
    ) {
        self.upstreamSecurity = upstreamSecurity
        self.upstreamPlugAndCharge = upstreamPlugAndCharge
        self.answerStartEarly = answerStartEarly
        self.lightPath = lightPath
    }
}
