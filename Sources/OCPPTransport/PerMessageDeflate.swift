/// The parameters of RFC 7692's permessage-deflate as one connection agreed them, in the terms of its two roles:
/// the server (the side that accepted the upgrade) and the client (the side that dialled).
public struct DeflateAgreement: Sendable, Equatable {
    /// The server starts every message it compresses with an empty context (and the client may forget its
    /// inflater's window between messages).
    public var serverNoContextTakeover = false
    /// The same for the client's messages.
    public var clientNoContextTakeover = false
    /// The LZ77 window the server compresses with, 2^bits bytes (the client's inflater needs as much).
    public var serverMaxWindowBits = 15
    /// The window the client compresses with.
    public var clientMaxWindowBits = 15

    public init(
        serverNoContextTakeover: Bool = false,
        clientNoContextTakeover: Bool = false,
        serverMaxWindowBits: Int = 15,
        clientMaxWindowBits: Int = 15
    ) {
        self.serverNoContextTakeover = serverNoContextTakeover
        self.clientNoContextTakeover = clientNoContextTakeover
        self.serverMaxWindowBits = serverMaxWindowBits
        self.clientMaxWindowBits = clientMaxWindowBits
    }

    /// The response header value that states this agreement (what a server answers).
    public var headerValue: String {
        var parts = [PerMessageDeflate.name]
        if serverNoContextTakeover { parts.append("server_no_context_takeover") }
        if clientNoContextTakeover { parts.append("client_no_context_takeover") }
        if serverMaxWindowBits < 15 { parts.append("server_max_window_bits=\(serverMaxWindowBits)") }
        if clientMaxWindowBits < 15 { parts.append("client_max_window_bits=\(clientMaxWindowBits)") }
        return parts.joined(separator: "; ")
    }
}

/// What the relay agrees to on one leg: the largest window it lets a peer make it keep for inflating (the memory an
/// idle connection costs, 2^bits bytes plus zlib's state), and whether the peer must start each message afresh
/// (then the relay keeps no window at all between messages, at the price of the ratio).
public struct DeflatePolicy: Sendable, Equatable {
    /// The largest LZ77 window the relay inflates with for this peer, 9 … 15.
    public var peerMaxWindowBits: Int
    /// Ask the peer to compress each message without the previous ones as context.
    public var peerNoContextTakeover: Bool

    public init(peerMaxWindowBits: Int = 15, peerNoContextTakeover: Bool = false) {
        self.peerMaxWindowBits = min(15, max(9, peerMaxWindowBits))
        self.peerNoContextTakeover = peerNoContextTakeover
    }
}

/// RFC 7692 negotiation, both roles, without I/O: the charger's offers answered (the relay as server) and the
/// relay's offer to a backend checked against its answer (the relay as client).
///
/// zlib cannot compress raw deflate with an 8-bit window (it uses 9), so the relay never agrees to compress with one:
/// an offer that asks it to is declined, and the next offer is read.
public enum PerMessageDeflate {
    public static let name = "permessage-deflate"

    // MARK: The relay as server (a charger's offers)

    /// The agreement with a client that offered `offers` (its `Sec-WebSocket-Extensions` values), when one of its
    /// permessage-deflate offers can be accepted under `policy`: the first such, as RFC 7692 §5 says. `nil`: no
    /// compression on this leg.
    public static func accept(_ offers: some Sequence<Substring>, policy: DeflatePolicy) -> DeflateAgreement? {
        for offer in WebSocketExtensions.elements(in: offers) where offer.name == name {
            if let agreement = accept(offer, policy: policy) { return agreement }
        }
        return nil
    }

    private static func accept(_ offer: WebSocketExtensions.Element, policy: DeflatePolicy) -> DeflateAgreement? {
        guard let parameters = Parameters(offer.parameters) else { return nil }
        var agreement = DeflateAgreement()
        agreement.serverNoContextTakeover = parameters.serverNoContextTakeover
        // The relay compresses with the window the client allows it (never 8: zlib's raw deflate cannot).
        if let bits = parameters.serverMaxWindowBits {
            guard let bits, bits >= 9 else { return nil }
            agreement.serverMaxWindowBits = bits
        }
        agreement.clientNoContextTakeover = parameters.clientNoContextTakeover || policy.peerNoContextTakeover
        // The client's window: at most what the relay keeps, which it may say only when the client offered it.
        switch parameters.clientMaxWindowBits {
        case .some(let offered):
            agreement.clientMaxWindowBits = min(offered ?? 15, policy.peerMaxWindowBits)
        case .none:
            // Without the parameter the client compresses with 15 bits; a relay keeping less declines.
            guard policy.peerMaxWindowBits == 15 else { return nil }
        }
        return agreement
    }

    // MARK: The relay as client (its offer upstream)

    /// The relay's offer to a backend under `policy` (the window it keeps for the backend's messages).
    public static func offer(_ policy: DeflatePolicy) -> String {
        var parts = [name]
        if policy.peerNoContextTakeover { parts.append("server_no_context_takeover") }
        if policy.peerMaxWindowBits < 15 { parts.append("server_max_window_bits=\(policy.peerMaxWindowBits)") }
        parts.append("client_max_window_bits")
        return parts.joined(separator: "; ")
    }

    /// What a backend's answer (its `Sec-WebSocket-Extensions` values) to ``offer(_:)`` agreed: `nil` when it
    /// declined compression; an error when it names another extension, repeats this one, or agrees to parameters
    /// outside the offer (RFC 6455 §4.1, RFC 7692 §5: the relay then fails the connection).
    public static func answer(
        _ values: some Sequence<Substring>,
        to policy: DeflatePolicy
    ) -> Result<DeflateAgreement?, AnswerError> {
        let answered = WebSocketExtensions.elements(in: values)
        guard let first = answered.first else { return .success(nil) }
        if let other = answered.first(where: { $0.name != name }) { return .failure(.unoffered(other.name)) }
        guard answered.count == 1 else { return .failure(.invalid("more than one permessage-deflate agreement")) }
        guard let parameters = Parameters(first.parameters) else {
            let written = first.parameters.map { parameter in
                parameter.value.map { "\(parameter.name)=\($0)" } ?? parameter.name
            }
            return .failure(.invalid("parameters outside the offer: \(written.joined(separator: "; "))"))
        }
        var agreement = DeflateAgreement()
        agreement.serverNoContextTakeover = parameters.serverNoContextTakeover
        if policy.peerNoContextTakeover, !parameters.serverNoContextTakeover {
            return .failure(.invalid("server_no_context_takeover was asked for and not agreed"))
        }
        agreement.clientNoContextTakeover = parameters.clientNoContextTakeover
        switch parameters.serverMaxWindowBits {
        case .some(.some(let bits)):
            guard bits <= policy.peerMaxWindowBits else {
                return .failure(
                    .invalid("server_max_window_bits=\(bits) is more than the \(policy.peerMaxWindowBits) offered")
                )
            }
            agreement.serverMaxWindowBits = bits
        case .some(.none):
            return .failure(.invalid("server_max_window_bits without a value"))
        case .none:
            guard policy.peerMaxWindowBits == 15 else {
                return .failure(
                    .invalid("server_max_window_bits=\(policy.peerMaxWindowBits) was asked for and not agreed")
                )
            }
        }
        switch parameters.clientMaxWindowBits {
        case .some(.some(let bits)):
            // The relay compresses with what the backend keeps (never 8: zlib's raw deflate cannot).
            guard bits >= 9 else { return .failure(.invalid("client_max_window_bits=8 cannot be honoured")) }
            agreement.clientMaxWindowBits = bits
        case .some(.none):
            return .failure(.invalid("client_max_window_bits without a value"))
        case .none:
            break
        }
        return .success(agreement)
    }

    /// Why a backend's answer fails the connection.
    public enum AnswerError: Error, Equatable, CustomStringConvertible {
        /// An extension the relay did not offer.
        case unoffered(String)
        /// permessage-deflate with parameters outside the offer.
        case invalid(String)

        public var description: String {
            switch self {
            case .unoffered(let name): "the server answered with extension '\(name)', which was not offered"
            case .invalid(let why): "the server's permessage-deflate answer is invalid: \(why)"
            }
        }
    }

    // MARK: Parameters

    /// An offer's or answer's parameters, each known and at most once, window sizes 8 … 15 (RFC 7692 §7).
    private struct Parameters {
        var serverNoContextTakeover = false
        var clientNoContextTakeover = false
        /// Absent (`nil`), or present with its value (a `client_max_window_bits` offer may have none).
        var serverMaxWindowBits: Int??
        var clientMaxWindowBits: Int??

        init?(_ parameters: [(name: String, value: String?)]) {
            var seen: Set<String> = []
            for (name, value) in parameters {
                guard seen.insert(name).inserted else { return nil }
                switch name {
                case "server_no_context_takeover":
                    guard value == nil else { return nil }
                    serverNoContextTakeover = true
                case "client_no_context_takeover":
                    guard value == nil else { return nil }
                    clientNoContextTakeover = true
                case "server_max_window_bits":
                    guard let bits = value.flatMap(Self.windowBits) else { return nil }
                    serverMaxWindowBits = .some(bits)
                case "client_max_window_bits":
                    guard let value else {
                        clientMaxWindowBits = .some(nil)
                        continue
                    }
                    guard let bits = Self.windowBits(value) else { return nil }
                    clientMaxWindowBits = .some(bits)
                default:
                    return nil
                }
            }
        }

        /// A window size as RFC 7692 writes it: 8 … 15 in decimal, no leading zero.
        static func windowBits(_ text: String) -> Int? {
            guard let bits = Int(text), (8...15).contains(bits), text == String(bits) else { return nil }
            return bits
        }
    }
}
