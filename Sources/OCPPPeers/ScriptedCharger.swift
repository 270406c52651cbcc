import Foundation
import NIOCore
import OCPP

/// A charger that plays one charging session: boot, status, authorize, a transaction with meter values,
/// stop, heartbeat; it answers the backend's requests while it waits for its own answers.
public struct ScriptedCharger: Sendable {
    public var host: String
    public var port: Int
    public var path: String
    public var version: OCPPVersion
    /// Pause between messages.
    public var pause: Duration

    public init(host: String, port: Int, path: String, version: OCPPVersion, pause: Duration = .milliseconds(20)) {
        self.host = host
        self.port = port
        self.path = path
        self.version = version
        self.pause = pause
    }

    /// What the session saw.
    public struct Report: Sendable {
        /// The subprotocol agreed.
        public var subprotocol: String?
        /// Calls sent and answered with a CALLRESULT.
        public var accepted = 0
        /// Calls answered with a CALLERROR.
        public var rejected = 0
        /// Backend requests answered.
        public var answered = 0
    }

    /// Runs the session and closes the connection normally.
    public func run(group: any EventLoopGroup) async throws -> Report {
        let socket = try await PeerTransport.connect(
            host: host,
            port: port,
            path: path,
            subprotocols: [version.rawValue],
            group: group
        )
        var report = Report(subprotocol: socket.subprotocol)
        let script = version == .v16 ? Self.script16 : Self.script201  // 2.1 sends 2.0.1's messages as they are
        report = try await socket.run { session in
            var report = report
            var context: [String: JSONValue] = [:]
            for (index, step) in script.enumerated() {
                let (action, payload) = step(context)
                let id = "\(index + 1)"
                try await session.send(RPCFrame.call(.init(messageID: id, action: action, payload: payload)).jsonText)
                while true {
                    guard let text = try await session.receive() else { return report }
                    guard let frame = try? RPCFrame.parse(text) else { continue }
                    switch frame {
                    case .call(let call):
                        try await session.send(answer(call).jsonText)
                        report.answered += 1
                        continue
                    case .callResult(let result) where result.messageID == id:
                        report.accepted += 1
                        if let transactionId = result.payload["transactionId"] {
                            context["transactionId"] = transactionId
                        }
                    case .callError(let error) where error.messageID == id:
                        report.rejected += 1
                    default:
                        continue
                    }
                    break
                }
                try await Task.sleep(for: pause)
            }
            try await session.close()
            return report
        }
        return report
    }

    private func answer(_ call: RPCFrame.Call) -> RPCFrame {
        func object(_ members: [(String, JSONValue)]) -> JSONValue { .object(members.map { (key: $0.0, value: $0.1) }) }
        switch call.action {
        case "GetConfiguration":
            return .callResult(
                .init(
                    messageID: call.messageID,
                    payload: object([
                        (
                            "configurationKey",
                            .array([
                                object([
                                    ("key", .string("HeartbeatInterval")), ("readonly", .bool(false)),
                                    ("value", .string("300")),
                                ])
                            ])
                        )
                    ])
                )
            )
        case "GetVariables":
            return .callResult(
                .init(
                    messageID: call.messageID,
                    payload: object([
                        (
                            "getVariableResult",
                            .array([
                                object([
                                    ("attributeStatus", .string("Accepted")), ("attributeValue", .string("300")),
                                    ("component", object([("name", .string("OCPPCommCtrlr"))])),
                                    ("variable", object([("name", .string("HeartbeatInterval"))])),
                                ])
                            ])
                        )
                    ])
                )
            )
        default:
            return .callError(
                .init(
                    messageID: call.messageID,
                    errorCode: "NotImplemented",
                    errorDescription: "not implemented by the scripted charger"
                )
            )
        }
    }

    typealias Step = @Sendable ([String: JSONValue]) -> (String, JSONValue)

    private static func object(_ members: [(String, JSONValue)]) -> JSONValue {
        .object(members.map { (key: $0.0, value: $0.1) })
    }

    private static func now() -> JSONValue { .string(DemoBackend.now()) }

    private static func status16(_ status: String) -> Step {
        { _ in
            (
                "StatusNotification",
                object([
                    ("connectorId", .number("1")), ("errorCode", .string("NoError")), ("status", .string(status)),
                    ("timestamp", now()),
                ])
            )
        }
    }

    /// A `meterValue` array with one energy register reading taken now (1.6 writes the value as a string,
    /// 2.0.1 as a number).
    private static func energyReading(_ value: JSONValue, unit: String?) -> JSONValue {
        var sample: [(String, JSONValue)] = [("value", value), ("measurand", .string("Energy.Active.Import.Register"))]
        if let unit { sample.append(("unit", .string(unit))) }
        return .array([object([("timestamp", now()), ("sampledValue", .array([object(sample)]))])])
    }

    private static func meter16(_ wh: Int) -> Step {
        { context in
            (
                "MeterValues",
                object([
                    ("connectorId", .number("1")), ("transactionId", context["transactionId"] ?? .number("0")),
                    ("meterValue", energyReading(.string(String(wh)), unit: "Wh")),
                ])
            )
        }
    }

    static let script16: [Step] = [
        { _ in
            (
                "BootNotification",
                object([
                    ("chargePointVendor", .string("ocpp-relay")), ("chargePointModel", .string("Demo")),
                    ("firmwareVersion", .string("1.0")),
                ])
            )
        },
        status16("Available"),
        { _ in ("Authorize", object([("idTag", .string("DEMO-TAG-1"))])) },
        { _ in
            (
                "StartTransaction",
                object([
                    ("connectorId", .number("1")), ("idTag", .string("DEMO-TAG-1")), ("meterStart", .number("1000")),
                    ("timestamp", now()),
                ])
            )
        },
        status16("Charging"),
        meter16(1500), meter16(2000), meter16(2500),
        { context in
            (
                "StopTransaction",
                object([
                    ("transactionId", context["transactionId"] ?? .number("0")), ("idTag", .string("DEMO-TAG-1")),
                    ("meterStop", .number("2500")), ("timestamp", now()), ("reason", .string("Local")),
                ])
            )
        },
        status16("Available"),
        { _ in ("Heartbeat", object([])) },
    ]

    private static func status201(_ status: String) -> Step {
        { _ in
            (
                "StatusNotification",
                object([
                    ("timestamp", now()), ("connectorStatus", .string(status)), ("evseId", .number("1")),
                    ("connectorId", .number("1")),
                ])
            )
        }
    }

    private static let token201 = object([("idToken", .string("DEMO-TAG-1")), ("type", .string("ISO14443"))])

    private static func transaction201(
        _ type: String,
        trigger: String,
        seqNo: Int,
        wh: Int?,
        extra: [(String, JSONValue)] = []
    ) -> Step {
        { _ in
            var info: [(String, JSONValue)] = [("transactionId", .string("demo-tx-1"))]
            if type == "Ended" { info.append(("stoppedReason", .string("Local"))) }
            var members: [(String, JSONValue)] = [
                ("eventType", .string(type)), ("timestamp", now()), ("triggerReason", .string(trigger)),
                ("seqNo", .number(String(seqNo))), ("transactionInfo", object(info)),
            ]
            if let wh {
                members.append(("meterValue", energyReading(.number(String(wh)), unit: nil)))
            }
            return ("TransactionEvent", object(members + extra))
        }
    }

    static let script201: [Step] = [
        { _ in
            (
                "BootNotification",
                object([
                    ("reason", .string("PowerUp")),
                    ("chargingStation", object([("model", .string("Demo")), ("vendorName", .string("ocpp-relay"))])),
                ])
            )
        },
        status201("Available"),
        { _ in ("Authorize", object([("idToken", token201)])) },
        transaction201(
            "Started",
            trigger: "Authorized",
            seqNo: 0,
            wh: 1000,
            extra: [("idToken", token201), ("evse", object([("id", .number("1")), ("connectorId", .number("1"))]))]
        ),
        status201("Occupied"),
        transaction201("Updated", trigger: "MeterValuePeriodic", seqNo: 1, wh: 1500),
        transaction201("Updated", trigger: "MeterValuePeriodic", seqNo: 2, wh: 2000),
        transaction201("Ended", trigger: "StopAuthorized", seqNo: 3, wh: 2500),
        status201("Available"),
        { _ in ("Heartbeat", object([])) },
    ]
}
