import OCPP
import Testing

@Suite("Frame header scan")
struct RPCFrameHeaderTests {
    func scan(_ text: String) -> RPCFrameHeader? {
        Array(text.utf8).withUnsafeBytes { RPCFrameHeader.scan($0) }
    }

    @Test("calls, results and errors: type, action, and an id hash that pairs a result with its call")
    func kinds() throws {
        let call = try #require(scan(#"[2,"19223201","BootNotification",{"chargePointVendor":"x"}]"#))
        #expect(call.messageType == 2)
        #expect(call.action.map { OCPPAction.all[$0] } == "BootNotification")
        let result = try #require(scan(#" [ 3 , "19223201" , {"status":"Accepted"}]"#))
        #expect(result.messageType == 3 && result.action == nil)
        #expect(result.messageIDHash == call.messageIDHash)
        let error = try #require(scan(#"[4,"19223201","NotImplemented","",{}]"#))
        #expect(error.messageType == 4 && error.messageIDHash == call.messageIDHash)
        #expect(scan(#"[3,"19223202",{}]"#)?.messageIDHash != call.messageIDHash)
    }

    @Test("an action OCPP does not define is no label; odd frames are nil, never a guess")
    func unknown() {
        #expect(scan(#"[2,"1","MadeUpAction",{}]"#)?.action == nil)
        #expect(scan(#"[2,"1","MadeUpAction",{}]"#)?.messageType == 2)
        for text in [
            "", "[", "not json", #"{"a":1}"#, #"[5,"1",{}]"#, #"[2,1,"Heartbeat",{}]"#, #"[2,"a\"b","Heartbeat",{}]"#,
            #"[2,"1""#,
        ] {
            #expect(scan(text) == nil, "\(text)")
        }
    }

    @Test("every known action is found by its bytes")
    func everyAction() {
        for (index, name) in OCPPAction.all.enumerated() {
            #expect(Array(name.utf8).withUnsafeBytes { OCPPAction.index(of: $0) } == index)
        }
        #expect(Set(OCPPAction.all).count == OCPPAction.all.count)
    }
}
