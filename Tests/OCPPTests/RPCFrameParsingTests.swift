import OCPP
import Testing

@Suite("RPC frame parsing")
struct RPCFrameParsingTests {
    @Test("a CALL keeps its id, action and payload")
    func call() throws {
        let frame = try RPCFrame.parse(
            #"[2,"19223201","BootNotification",{"chargePointVendor":"VendorX","chargePointModel":"SingleSocketCharger"}]"#
        )
        guard case .call(let call) = frame else {
            Issue.record("expected a CALL, got \(frame)")
            return
        }
        #expect(call.messageID == "19223201")
        #expect(call.action == "BootNotification")
        #expect(call.payload["chargePointVendor"]?.stringValue == "VendorX")
        #expect(frame.messageTypeID == 2)
    }

    @Test("a CALLRESULT and a CALLERROR parse")
    func results() throws {
        let result = try RPCFrame.parse(
            #"[3, "19223201", {"status":"Accepted","currentTime":"2013-02-01T20:53:32.486Z","interval":300}]"#
        )
        #expect(result.messageID == "19223201")
        #expect(result.action == nil)
        guard case .callResult(let r) = result else {
            Issue.record("expected a CALLRESULT")
            return
        }
        #expect(r.payload["interval"]?.intValue == 300)

        let error = try RPCFrame.parse(#"[4,"162376037","NotSupported","SetDisplayMessageRequest not implemented",{}]"#)
        guard case .callError(let e) = error else {
            Issue.record("expected a CALLERROR")
            return
        }
        #expect(e.errorCode == "NotSupported")
        #expect(e.errorDescription == "SetDisplayMessageRequest not implemented")
    }

    @Test("re-serialising keeps numbers and member order exactly")
    func roundTrip() throws {
        let text =
            #"[2,"a","MeterValues",{"z":1.50,"a":-0.0,"e":1E+3,"nested":{"b":[true,false,null],"s":"\u00e9\n"}}]"#
        let frame = try RPCFrame.parse(text)
        #expect(
            frame.jsonText
                == #"[2,"a","MeterValues",{"z":1.50,"a":-0.0,"e":1E+3,"nested":{"b":[true,false,null],"s":"é\n"}}]"#
        )
        #expect(try RPCFrame.parse(frame.jsonText) == frame)
    }

    @Test(
        "every malformed shape has its own error",
        arguments: [
            ("", OCPPParseError.Code.notJSON),
            ("[2,\"1\",\"Heartbeat\",{}", .notJSON),
            ("{\"a\":1}", .notAnArray),
            ("[]", .missingMessageType),
            ("[\"2\",\"1\",\"Heartbeat\",{}]", .missingMessageType),
            ("[2.5,\"1\",\"Heartbeat\",{}]", .missingMessageType),
            ("[2,1,\"Heartbeat\",{}]", .invalidMessageID),
            ("[2]", .invalidMessageID),
            ("[2,\"\",\"Heartbeat\",{}]", .invalidMessageID),
            ("[2,\"1234567890123456789012345678901234567\",\"Heartbeat\",{}]", .invalidMessageID),
            ("[2,\"1\",\"Heartbeat\"]", .wrongElementCount),
            ("[2,\"1\",\"Heartbeat\",{},{}]", .wrongElementCount),
            ("[3,\"1\"]", .wrongElementCount),
            ("[4,\"1\",\"NotSupported\",\"x\"]", .wrongElementCount),
            ("[2,\"1\",\"\",{}]", .invalidAction),
            ("[2,\"1\",7,{}]", .invalidAction),
            ("[2,\"1\",\"Heartbeat\",[]]", .invalidPayload),
            ("[3,\"1\",null]", .invalidPayload),
            ("[4,\"1\",5,\"x\",{}]", .invalidPayload),
            ("[4,\"1\",\"NotSupported\",\"x\",\"details\"]", .invalidPayload),
            ("[9,\"1\",{}]", .unknownMessageType),
        ]
    )
    func malformed(text: String, code: OCPPParseError.Code) {
        #expect {
            try RPCFrame.parse(text)
        } throws: { error in
            (error as? OCPPParseError)?.code == code
        }
    }

    @Test("the error keeps the message id so a CALLERROR can answer it, spelt per version")
    func errorCarriesMessageID() {
        do {
            _ = try RPCFrame.parse("[2,\"abc\",\"Heartbeat\",[]]")
            Issue.record("expected an error")
        } catch {
            #expect(error.messageID == "abc")
            #expect(error.rpcErrorCode(for: .v16) == "FormationViolation")
            #expect(error.rpcErrorCode(for: .v201) == "FormatViolation")
        }
    }

    @Test("OCPP 2.1 message types 5 and 6 are recognised")
    func ocpp21() throws {
        #expect(try RPCFrame.parse("[6,\"1\",\"NotifyPeriodicEventStream\",{}]").messageTypeID == 6)
        #expect(try RPCFrame.parse("[5,\"1\",\"InternalError\",\"x\",{}]").messageTypeID == 5)
    }
}
