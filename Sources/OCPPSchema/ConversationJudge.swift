import OCPP

/// Judges the frames of one relayed connection: the charger's conversation with the relay and, when the relay
/// translates, the relay's own conversation with the backend, each against the schema of its version. Frames the
/// relay sends only teach the judges which call an answer answers; frames a peer sent get a verdict. It also learns
/// the charger's vendor, model and firmware from its BootNotification. Pure; one per connection.
public struct ConversationJudge: Sendable {
    /// The legs of a relayed connection.
    public enum Leg: Sendable, Hashable {
        case charger
        case upstream
    }

    /// Who sent a judged frame: the charger, or the backend.
    public enum Side: String, Sendable, Hashable, Codable {
        case charger
        case backend
    }

    /// A charger's description of itself, from its BootNotification.
    public struct Boot: Sendable, Hashable, Codable {
        public var vendor: String
        public var model: String
        public var firmware: String

        public init(vendor: String, model: String, firmware: String) {
            self.vendor = vendor
            self.model = model
            self.firmware = firmware
        }

        public static let unknown = Boot(vendor: "unknown", model: "unknown", firmware: "unknown")

        /// A BootNotification's request payload (1.6 and 2.x spell the fields differently).
        public init(bootNotification payload: JSONValue) {
            let station = payload["chargingStation"]
            self.init(
                vendor: payload["chargePointVendor"]?.stringValue ?? station?["vendorName"]?.stringValue ?? "unknown",
                model: payload["chargePointModel"]?.stringValue ?? station?["model"]?.stringValue ?? "unknown",
                firmware: payload["firmwareVersion"]?.stringValue ?? station?["firmwareVersion"]?.stringValue
                    ?? "unknown"
            )
        }
    }

    /// The verdict on a frame a peer sent.
    public struct PeerVerdict: Sendable, Hashable {
        public var side: Side
        public var version: OCPPVersion
        /// What the frame is, for grouping: `Action`, `Action.result`, `Action.error`, or `(not OCPP)`. Only actions
        /// the version defines appear (a frame of another action is not judged), so the set is bounded.
        public var action: String
        public var verdict: FrameVerdict
    }

    public let chargerVersion: OCPPVersion
    public let upstreamVersion: OCPPVersion
    private var chargerJudge: FrameJudge
    /// The backend's conversation, when it is spoken in another version (a translated connection); otherwise the
    /// relay passes frames through and one judge follows both legs.
    private var upstreamJudge: FrameJudge?
    /// The charger's BootNotification, once seen.
    public private(set) var boot: Boot?

    public init(chargerVersion: OCPPVersion, upstreamVersion: OCPPVersion? = nil) {
        self.chargerVersion = chargerVersion
        self.upstreamVersion = upstreamVersion ?? chargerVersion
        chargerJudge = FrameJudge(version: chargerVersion)
        upstreamJudge = self.upstreamVersion != chargerVersion ? FrameJudge(version: self.upstreamVersion) : nil
    }

    private static func header(_ bytes: some Collection<UInt8>) -> RPCFrameHeader? {
        bytes.withContiguousStorageIfAvailable { RPCFrameHeader.scan(UnsafeRawBufferPointer($0)) } ?? nil
    }

    /// The judge of a connection recorded with these subprotocols (the charger's, and the backend's when it differs);
    /// nil when the charger's is no OCPP version.
    public init?(chargerSubprotocol: String?, upstreamSubprotocol: String?) {
        guard let version = chargerSubprotocol.flatMap(OCPPVersion.init(rawValue:)) else { return nil }
        self.init(chargerVersion: version, upstreamVersion: upstreamSubprotocol.flatMap(OCPPVersion.init(rawValue:)))
    }

    /// Judges a frame's text that crossed `leg`, received by the relay (a peer sent it) or sent by it; returns the
    /// verdict of a peer's frame that could be judged, nil otherwise.
    public mutating func judge(
        _ bytes: some Collection<UInt8>,
        leg: Leg,
        receivedByRelay: Bool
    ) -> PeerVerdict? {
        let sender: FrameJudge.Sender =
            switch (leg, receivedByRelay) {
            case (.charger, true), (.upstream, false): .charger
            case (.charger, false), (.upstream, true): .server
            }
        let onUpstream = leg == .upstream && upstreamJudge != nil
        // Passing through, the charger's calls were judged as they came in: the relay's copies teach nothing new.
        if leg == .upstream, !receivedByRelay, !onUpstream { return nil }
        // The relay's own frames only teach, and their header says what they teach.
        if !receivedByRelay, let header = Self.header(bytes) {
            let noted = onUpstream ? upstreamJudge!.note(header, from: sender) : chargerJudge.note(header, from: sender)
            if noted { return nil }
        }
        // Most frames keep their schema: judged from their bytes, without a tree (a charger's boot is read whole).
        let side: Side = leg == .charger ? .charger : .backend
        let version = onUpstream ? upstreamVersion : chargerVersion
        if let judged = bytes.withContiguousStorageIfAvailable({ buffer in
            onUpstream
                ? upstreamJudge!.judgeConforming(buffer, from: sender)
                : chargerJudge.judgeConforming(buffer, from: sender)
        }) ?? nil {
            guard receivedByRelay else { return nil }
            if leg == .charger, judged.messageType == 2, judged.action == "BootNotification",
                case .call(let call)? = try? RPCFrame.parse(bytes)
            {
                boot = Boot(bootNotification: call.payload)
            }
            return Self.verdict(judged, side: side, version: version)
        }
        let frame: RPCFrame
        do {
            frame = try RPCFrame.parse(bytes)
        } catch {
            guard receivedByRelay else { return nil }
            return PeerVerdict(side: side, version: version, action: "(not OCPP)", verdict: .malformed("\(error)"))
        }
        let judged: FrameJudge.Judged
        if onUpstream {
            judged = upstreamJudge!.judge(frame, from: sender)
        } else {
            judged = chargerJudge.judge(frame, from: sender)
        }
        guard receivedByRelay else { return nil }
        if leg == .charger, judged.messageType == 2, judged.action == "BootNotification", case .call(let call) = frame {
            boot = Boot(bootNotification: call.payload)
        }
        return Self.verdict(judged, side: side, version: version)
    }

    /// A peer's frame's verdict, for grouping; nil when it was not judged.
    private static func verdict(_ judged: FrameJudge.Judged, side: Side, version: OCPPVersion) -> PeerVerdict? {
        if case .unjudged = judged.verdict { return nil }
        let suffix =
            switch judged.messageType {
            case 3: ".result"
            case 4, 5: ".error"
            default: ""
            }
        return PeerVerdict(
            side: side,
            version: version,
            action: (judged.action ?? "?") + suffix,
            verdict: judged.verdict
        )
    }
}
