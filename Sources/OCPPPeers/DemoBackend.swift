import Foundation
import NIOCore
import OCPP
import Synchronization

/// A small OCPP 1.6 / 2.0.1 backend that accepts every charger: it answers the charger-initiated
/// messages with schema-valid responses and, after a boot, asks the charger one question of its own
/// (GetConfiguration in 1.6, GetVariables in 2.0.1), so a demo shows traffic in both directions.
public struct DemoBackend: Sendable {
    private let server: PeerTransport.Server
    private let transactionCounter = Counter()

    /// The port it listens on.
    public var port: Int { server.port }

    public static func start(
        host: String = "127.0.0.1",
        port: Int = 0,
        group: any EventLoopGroup
    ) async throws -> DemoBackend {
        let server = try await PeerTransport.listen(
            host: host,
            port: port,
            supported: ["ocpp1.6", "ocpp2.0.1"],
            group: group
        )
        return DemoBackend(server: server)
    }

    /// Serves chargers until ``stop()``.
    public func run() async throws {
        try await server.serve { socket, _ in
            try? await socket.run { session in
                try await serve(session, version: socket.subprotocol == "ocpp2.0.1" ? .v201 : .v16)
            }
        }
    }

    public func stop() {
        server.close()
    }

    private func serve(_ session: PeerSocket.Session, version: OCPPVersion) async throws {
        var asked = false
        while let text = try await session.receive() {
            let frame: RPCFrame
            do {
                frame = try RPCFrame.parse(text)
            } catch {
                let reply = RPCFrame.callError(
                    .init(
                        messageID: error.messageID ?? "-1",
                        errorCode: error.rpcErrorCode(for: version),
                        errorDescription: error.message
                    )
                )
                try await session.send(reply.jsonText)
                continue
            }
            guard case .call(let call) = frame else { continue }  // answers to our own question
            let reply = answer(call, version: version)
            try await session.send(reply.jsonText)
            if call.action == "BootNotification" && !asked {
                asked = true
                let question: JSONValue =
                    version == .v16
                    ? .object([(key: "key", value: .array([.string("HeartbeatInterval")]))])
                    : .object([
                        (
                            key: "getVariableData",
                            value: .array([
                                .object([
                                    (
                                        key: "component",
                                        value: .object([(key: "name", value: .string("OCPPCommCtrlr"))])
                                    ),
                                    (
                                        key: "variable",
                                        value: .object([(key: "name", value: .string("HeartbeatInterval"))])
                                    ),
                                ])
                            ])
                        )
                    ])
                let action = version == .v16 ? "GetConfiguration" : "GetVariables"
                try await session.send(
                    RPCFrame.call(.init(messageID: "backend-1", action: action, payload: question)).jsonText
                )
            }
        }
    }

    private func answer(_ call: RPCFrame.Call, version: OCPPVersion) -> RPCFrame {
        let now = JSONValue.string(Self.now())
        let accepted = JSONValue.string("Accepted")
        func result(_ members: [(String, JSONValue)]) -> RPCFrame {
            .callResult(.init(messageID: call.messageID, payload: .object(members.map { (key: $0.0, value: $0.1) })))
        }
        switch (version, call.action) {
        case (_, "BootNotification"):
            return result([("currentTime", now), ("interval", .number("300")), ("status", accepted)])
        case (_, "Heartbeat"):
            return result([("currentTime", now)])
        case (_, "StatusNotification"), (_, "MeterValues"), (_, "DiagnosticsStatusNotification"),
            (_, "FirmwareStatusNotification"), (.v201, "NotifyEvent"), (.v201, "NotifyReport"),
            (.v201, "LogStatusNotification"),
            (.v201, "SecurityEventNotification"):
            return result([])
        case (.v16, "Authorize"), (.v16, "StopTransaction"):
            return result([("idTagInfo", .object([(key: "status", value: accepted)]))])
        case (.v16, "StartTransaction"):
            return result([
                ("idTagInfo", .object([(key: "status", value: accepted)])),
                ("transactionId", .number(String(transactionCounter.next()))),
            ])
        case (.v201, "Authorize"):
            return result([("idTokenInfo", .object([(key: "status", value: accepted)]))])
        case (.v201, "TransactionEvent"):
            if call.payload["idToken"] != nil {
                return result([("idTokenInfo", .object([(key: "status", value: accepted)]))])
            }
            return result([])
        case (_, "DataTransfer"):
            return result([("status", .string("UnknownVendorId"))])
        default:
            return .callError(
                .init(
                    messageID: call.messageID,
                    errorCode: "NotImplemented",
                    errorDescription: "\(call.action) is not implemented by the demo backend"
                )
            )
        }
    }

    static func now() -> String {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        return formatter.string(from: Date())
    }
}

/// A thread-safe counter.
final class Counter: Sendable {
    private let value = Mutex(0)

    func next() -> Int {
        value.withLock {
            $0 += 1
            return $0
        }
    }
}
