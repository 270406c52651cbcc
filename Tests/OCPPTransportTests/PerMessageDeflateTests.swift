import NIOCore
import OCPPTransport
import Testing

/// RFC 7692: the negotiation in both of the relay's roles, and the codec against the RFC's own examples.
@Suite("permessage-deflate")
struct PerMessageDeflateTests {
    // MARK: Codec

    static func compress(_ messages: [String], deflater: MessageDeflater) throws -> [[UInt8]] {
        try messages.map { message in
            var output = ByteBuffer()
            try Array(message.utf8).withUnsafeBytes { try deflater.compress($0, into: &output) }
            return Array(output.readableBytesView)
        }
    }

    static func inflate(_ payload: [UInt8], _ inflater: MessageInflater, limit: Int = 1 << 20) throws -> String {
        var output = ByteBuffer()
        try payload.withUnsafeBytes { try inflater.decompress($0, limit: limit, into: &output) }
        return String(buffer: output)
    }

    @Test("RFC 7692 §7.2.3: \"Hello\" compressed, and again with the first as its context")
    func rfcExamples() throws {
        let deflater = try MessageDeflater(windowBits: 15, noContextTakeover: false)
        let compressed = try Self.compress(["Hello", "Hello"], deflater: deflater)
        #expect(compressed[0] == [0xF2, 0x48, 0xCD, 0xC9, 0xC9, 0x07, 0x00])
        #expect(compressed[1] == [0xF2, 0x00, 0x11, 0x00, 0x00])
        let inflater = try MessageInflater(windowBits: 15, noContextTakeover: false)
        #expect(try compressed.map { try Self.inflate($0, inflater) } == ["Hello", "Hello"])
        // Without context takeover each message stands alone.
        let alone = try Self.compress(
            ["Hello", "Hello"],
            deflater: MessageDeflater(windowBits: 15, noContextTakeover: true)
        )
        #expect(alone == [compressed[0], compressed[0]])
        let fresh = try MessageInflater(windowBits: 15, noContextTakeover: true)
        #expect(try alone.map { try Self.inflate($0, fresh) } == ["Hello", "Hello"])
    }

    @Test(
        "OCPP messages round trip on every window, later ones a quarter of their text or less with the earlier as context"
    )
    func meterValues() throws {
        let messages = (0..<40).map { n in
            #"[2,"\#(n)","MeterValues",{"connectorId":1,"transactionId":7,"meterValue":[{"timestamp":"2026-12-08T06:\#(n % 60):00Z","sampledValue":[{"value":"\#(1000 + 37 * n)","measurand":"Energy.Active.Import.Register","unit":"Wh"},{"value":"11040","measurand":"Power.Active.Import","unit":"W"}]}]}]"#
        }
        // zlib reaches back 2^bits − 262 bytes: 9 bits cannot see the previous message, 10 and more can (10: 5×,
        // 11: 13×, 12: 14× here). The relay's own deflater (11 bits, memLevel 2) among them.
        for (bits, memoryLevel) in [(9, 8), (10, 8), (11, 2), (12, 8), (15, 8)] as [(Int, Int32)] {
            let compressed = try Self.compress(
                messages,
                deflater: MessageDeflater(windowBits: bits, noContextTakeover: false, memoryLevel: memoryLevel)
            )
            let inflater = try MessageInflater(windowBits: bits, noContextTakeover: false)
            #expect(try compressed.map { try Self.inflate($0, inflater) } == messages, "window \(bits)")
            let text = messages.dropFirst().map(\.utf8.count).reduce(0, +)
            let wire = compressed.dropFirst().map(\.count).reduce(0, +)
            #expect(bits == 9 || wire * 4 < text, "window \(bits): \(wire) bytes for \(text)")
        }
    }

    @Test("a message inflating past the limit stops there; exactly the limit is fine")
    func bomb() throws {
        let zeros = String(repeating: "0", count: 1 << 20)
        let compressed = try Self.compress([zeros], deflater: MessageDeflater(windowBits: 15, noContextTakeover: true))
        #expect(compressed[0].count < 8192)
        var output = ByteBuffer()
        let inflater = try MessageInflater(windowBits: 15, noContextTakeover: true)
        #expect(throws: DeflateError.tooLarge) {
            try compressed[0].withUnsafeBytes { try inflater.decompress($0, limit: 64 * 1024, into: &output) }
        }
        #expect(output.readableBytes <= 64 * 1024 + 1)
        let exact = try MessageInflater(windowBits: 15, noContextTakeover: true)
        #expect(try Self.inflate(compressed[0], exact, limit: 1 << 20).utf8.count == 1 << 20)
        let short = try MessageInflater(windowBits: 15, noContextTakeover: true)
        #expect(throws: DeflateError.tooLarge) { try Self.inflate(compressed[0], short, limit: (1 << 20) - 1) }
    }

    @Test("data that is not deflate fails with zlib's reason")
    func corrupt() throws {
        let inflater = try MessageInflater(windowBits: 15, noContextTakeover: false)
        #expect(throws: DeflateError.self) { try Self.inflate([0xFF, 0xFF, 0xFF, 0xFF, 0x00], inflater) }
    }

    // MARK: Negotiation, the relay as server

    @Test("a charger's offer is accepted within the relay's window, the first acceptable one of several")
    func accept() {
        let websockets: [Substring] = ["permessage-deflate; client_max_window_bits"]
        #expect(PerMessageDeflate.accept(websockets, policy: .init())?.headerValue == "permessage-deflate")
        let small = PerMessageDeflate.accept(websockets, policy: .init(peerMaxWindowBits: 12))
        #expect(small == DeflateAgreement(clientMaxWindowBits: 12))
        #expect(small?.headerValue == "permessage-deflate; client_max_window_bits=12")
        // Without client_max_window_bits the charger compresses with 15 bits: a relay keeping less declines.
        #expect(PerMessageDeflate.accept(["permessage-deflate"], policy: .init(peerMaxWindowBits: 12)) == nil)
        #expect(PerMessageDeflate.accept(["permessage-deflate"], policy: .init()) == DeflateAgreement())
        // The relay never compresses with an 8-bit window; the next offer is read.
        let two: [Substring] = [
            "permessage-deflate; server_max_window_bits=8, permessage-deflate; server_max_window_bits=10; server_no_context_takeover"
        ]
        #expect(
            PerMessageDeflate.accept(two, policy: .init())
                == DeflateAgreement(serverNoContextTakeover: true, serverMaxWindowBits: 10)
        )
        #expect(
            PerMessageDeflate.accept(two, policy: .init())?.headerValue
                == "permessage-deflate; server_no_context_takeover; server_max_window_bits=10"
        )
        // The relay may ask the charger to compress each message afresh.
        #expect(
            PerMessageDeflate.accept(websockets, policy: .init(peerNoContextTakeover: true))?.headerValue
                == "permessage-deflate; client_no_context_takeover"
        )
        #expect(PerMessageDeflate.accept(["x-webkit-deflate-frame"], policy: .init()) == nil)
    }

    @Test(
        "an offer with an unknown, repeated or malformed parameter is declined",
        arguments: [
            "permessage-deflate; foo", "permessage-deflate; server_no_context_takeover; server_no_context_takeover",
            "permessage-deflate; server_max_window_bits=16", "permessage-deflate; server_max_window_bits=09",
            "permessage-deflate; server_max_window_bits", "permessage-deflate; client_max_window_bits=7",
            "permessage-deflate; server_no_context_takeover=1",
        ]
    )
    func declined(_ offer: String) {
        #expect(PerMessageDeflate.accept([offer[...]], policy: .init()) == nil)
    }

    // MARK: Negotiation, the relay as client

    @Test("the relay's offer upstream, and what a backend's answer agrees to or fails")
    func offerAndAnswer() {
        #expect(PerMessageDeflate.offer(.init()) == "permessage-deflate; client_max_window_bits")
        let small = DeflatePolicy(peerMaxWindowBits: 12, peerNoContextTakeover: true)
        #expect(
            PerMessageDeflate.offer(small)
                == "permessage-deflate; server_no_context_takeover; server_max_window_bits=12; client_max_window_bits"
        )
        #expect(PerMessageDeflate.answer([], to: .init()) == .success(nil))
        #expect(PerMessageDeflate.answer(["permessage-deflate"], to: .init()) == .success(DeflateAgreement()))
        #expect(
            PerMessageDeflate.answer(["permessage-deflate; client_max_window_bits=10"], to: .init())
                == .success(DeflateAgreement(clientMaxWindowBits: 10))
        )
        #expect(
            PerMessageDeflate.answer(
                ["permessage-deflate; server_no_context_takeover; server_max_window_bits=11"],
                to: small
            ) == .success(DeflateAgreement(serverNoContextTakeover: true, serverMaxWindowBits: 11))
        )
        let failures: [(Substring, DeflatePolicy)] = [
            ("x-unknown-extension", .init()),
            ("permessage-deflate; server_max_window_bits=13", small),
            ("permessage-deflate; server_max_window_bits=11", small),  // no server_no_context_takeover
            ("permessage-deflate; server_no_context_takeover", small),  // no server_max_window_bits
            ("permessage-deflate; client_max_window_bits=8", .init()),
            ("permessage-deflate; client_max_window_bits", .init()),
            ("permessage-deflate; foo", .init()),
            ("permessage-deflate, permessage-deflate", .init()),
        ]
        for (answer, policy) in failures {
            guard case .failure(let error) = PerMessageDeflate.answer([answer], to: policy) else {
                Issue.record("accepted: \(answer)")
                continue
            }
            #expect(!error.description.isEmpty)
        }
        #expect(
            PerMessageDeflate.answer(["x-unknown-extension"], to: .init())
                == .failure(.unoffered("x-unknown-extension"))
        )
    }
}
