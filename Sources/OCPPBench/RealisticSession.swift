/// The frames of one charger's day, compressed in time: boot, status, three transactions with meter
/// values every 60 s (energy, power, current and voltage per phase), heartbeats every 5 minutes.
/// Message ids are filled in by the charger ("ID" is the placeholder).
enum RealisticSession {
    static func frames(charger n: Int) -> [String] {
        var frames: [String] = []
        var seconds = 6 * 3600 + n * 7
        func time() -> String {
            let h = seconds / 3600 % 24
            let m = seconds / 60 % 60
            let s = seconds % 60
            return "2026-11-27T\(pad(h)):\(pad(m)):\(pad(s))Z"
        }
        func call(_ action: String, _ payload: String) { frames.append("[2,\"ID\",\"\(action)\",\(payload)]") }
        var rng = UInt64(truncatingIfNeeded: n) &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
        func random(_ range: ClosedRange<Int>) -> Int {
            rng = rng &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            return range.lowerBound + Int((rng >> 33) % UInt64(range.count))
        }
        call(
            "BootNotification",
            #"{"chargePointVendor":"Alfen BV","chargePointModel":"NG920-61","chargePointSerialNumber":"ace\#(100000 + n)","firmwareVersion":"6.4.0-4123"}"#
        )
        for connector in 0...1 {
            call(
                "StatusNotification",
                #"{"connectorId":\#(connector),"errorCode":"NoError","status":"Available","timestamp":"\#(time())"}"#
            )
        }
        var wh = random(100_000...900_000)
        for t in 0..<3 {
            let tag = "04A2" + String(random(0...0xFFFFFF), radix: 16, uppercase: true)
            call("Authorize", #"{"idTag":"\#(tag)"}"#)
            call(
                "StartTransaction",
                #"{"connectorId":1,"idTag":"\#(tag)","meterStart":\#(wh),"timestamp":"\#(time())"}"#
            )
            call(
                "StatusNotification",
                #"{"connectorId":1,"errorCode":"NoError","status":"Charging","timestamp":"\#(time())"}"#
            )
            for minute in 0..<30 {
                seconds += 60
                wh += random(170...190)
                var samples = [
                    #"{"value":"\#(wh)","context":"Sample.Periodic","measurand":"Energy.Active.Import.Register","location":"Outlet","unit":"Wh"}"#
                ]
                samples.append(
                    #"{"value":"\#(random(10800...11100))","context":"Sample.Periodic","measurand":"Power.Active.Import","location":"Outlet","unit":"W"}"#
                )
                for phase in ["L1", "L2", "L3"] {
                    samples.append(
                        #"{"value":"\#(random(155...160) / 10).\#(random(0...9))","context":"Sample.Periodic","measurand":"Current.Import","phase":"\#(phase)","location":"Outlet","unit":"A"}"#
                    )
                    samples.append(
                        #"{"value":"\#(random(228...233)).\#(random(0...9))","context":"Sample.Periodic","measurand":"Voltage","phase":"\#(phase)-N","location":"Outlet","unit":"V"}"#
                    )
                }
                call(
                    "MeterValues",
                    #"{"connectorId":1,"transactionId":\#(t + 1),"meterValue":[{"timestamp":"\#(time())","sampledValue":[\#(samples.joined(separator: ","))]}]}"#
                )
                if minute % 5 == 4 { call("Heartbeat", "{}") }
            }
            call(
                "StopTransaction",
                #"{"transactionId":\#(t + 1),"idTag":"\#(tag)","meterStop":\#(wh),"timestamp":"\#(time())","reason":"EVDisconnected"}"#
            )
            for status in ["Finishing", "Available"] {
                call(
                    "StatusNotification",
                    #"{"connectorId":1,"errorCode":"NoError","status":"\#(status)","timestamp":"\#(time())"}"#
                )
            }
            seconds += 1800
        }
        return frames
    }

    private static func pad(_ v: Int) -> String { v < 10 ? "0\(v)" : "\(v)" }
}
