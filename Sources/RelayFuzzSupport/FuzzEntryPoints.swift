import NIOCore
import NIOEmbedded
import NIOHTTP1
import OCPP
import Relay
import RelayConfig
import RelayRecording

/// The parsers that read what peers and files hand the relay, each behind one function that takes arbitrary bytes.
/// They must return, without crashing, hanging or growing memory without bound, whatever the bytes: the fuzz
/// harness (`Tests/Fuzz`, libFuzzer) and the corpus replay in the tests call them.
public enum FuzzEntryPoints {
    public static let targets = ["frames", "rpc", "recording", "handshake"]

    /// Runs one target on one input; unknown targets are a programming error.
    public static func run(_ target: String, _ data: [UInt8]) {
        switch target {
        case "frames": frames(data)
        case "rpc": rpc(data)
        case "recording": recording(data)
        case "handshake": handshake(data)
        default: preconditionFailure("unknown fuzz target \(target); known: \(targets)")
        }
    }

    /// WebSocket frames as a charger sends them, through the leg handler, in reads whose sizes the first byte
    /// chooses; then the connection goes.
    static func frames(_ data: [UInt8]) {
        guard let first = data.first else { return }
        let chunk = Int(first % 32) + 1
        let body = data.dropFirst()
        let leg = LegHandler(leg: .charger, maxFrameBytes: 4096)
        let channel = EmbeddedChannel(handler: leg)
        var offset = body.startIndex
        while offset < body.endIndex {
            let end = min(offset + chunk, body.endIndex)
            _ = try? channel.writeInbound(ByteBuffer(bytes: body[offset..<end]))
            offset = end
        }
        channel.pipeline.fireChannelInactive()
        _ = try? channel.finish()
    }

    /// OCPP-J RPC frames: the full parser and the header scan must agree whenever both read a frame.
    static func rpc(_ data: [UInt8]) {
        let parsed = try? RPCFrame.parse(data)
        let header = data.withUnsafeBytes { RPCFrameHeader.scan($0) }
        guard let parsed, let header else { return }
        switch parsed {
        case .call(let call):
            precondition(header.messageType == 2, "scan read type \(header.messageType) for a CALL")
            let known = Array(call.action.utf8).withUnsafeBytes { OCPPAction.index(of: $0) }
            precondition(
                header.action == known,
                "scan read action \(String(describing: header.action)) for \(call.action)"
            )
        case .callResult: precondition(header.messageType == 3, "scan read type \(header.messageType) for a CALLRESULT")
        case .callError: precondition(header.messageType == 4, "scan read type \(header.messageType) for a CALLERROR")
        case .callResultError, .send: preconditionFailure("scan read an OCPP 2.1 frame as type \(header.messageType)")
        }
    }

    /// A segment's decompressed bytes, through the record decoder, fed in two parts.
    static func recording(_ data: [UInt8]) {
        var decoder = RecordDecoder()
        let split = data.isEmpty ? 0 : Int(data[0]) % (data.count + 1)
        for part in [data[..<split], data[split...]] {
            decoder.feed(part)
            var steps = 0
            while steps <= data.count + 1 {
                steps += 1
                guard let step = try? decoder.next() else { return }
                if case .needMoreData = step { break }
            }
            precondition(steps <= data.count + 1, "the record decoder did not settle")
        }
        // And the same bytes as a gzip stream.
        if let inflater = try? GzipInflater() {
            _ = try? data.withUnsafeBytes { bytes in try inflater.decompress(bytes) { _ in } }
        }
    }

    /// What a charger's upgrade request carries: its path (identity, recorded path), subprotocols, credentials.
    static func handshake(_ data: [UInt8]) {
        let text = String(decoding: data, as: UTF8.self)
        if let (_, identity) = try? ChargePointIdentity.parse(requestTarget: text) {
            // The identity goes into an upstream path: it must come out as one safe segment.
            precondition(!identity.pathSegment.contains("/"), "identity segment \(identity.pathSegment) has a slash")
        }
        let recorded = Handshake.recordablePath(text)
        precondition(recorded.count <= text.count + 8 * text.count, "recorded path grew without bound")
        _ = BasicCredentials.parse(text)
        _ = try? PasswordHash(parsing: text)
        var headers = HTTPHeaders()
        headers.add(name: "Sec-WebSocket-Protocol", value: text)
        _ = Handshake.subprotocols(in: headers)
    }
}
