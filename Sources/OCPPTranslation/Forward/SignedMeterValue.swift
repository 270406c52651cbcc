import OCPP

/// A 1.6 SignedData sample's value read as 2.0.1's `signedMeterValue`: an OCMF string (`OCMF|payload|signature`,
/// carried byte for byte, its signature algorithm as the signing method), the JSON form some 1.6 backends use
/// (`signedMeterData`, `signingMethod`, `encodingMethod`, `publicKey`), or any other blob (encoding `Other`).
struct SignedMeterValue: Equatable {
    var signedMeterData: String
    var signingMethod: String
    var encodingMethod: String
    var publicKey: String
    /// The reading the data states, when it states one (OCMF `RD[0].RV` and `RU`).
    var reading: (value: String, unit: String?)?

    static func == (a: SignedMeterValue, b: SignedMeterValue) -> Bool {
        a.signedMeterData == b.signedMeterData && a.signingMethod == b.signingMethod
            && a.encodingMethod == b.encodingMethod && a.publicKey == b.publicKey
    }

    init?(_ data: String) {
        guard !data.isEmpty else { return nil }
        if data.hasPrefix("{"), let json = try? JSONParser.parse(data),
            let meterData = json["signedMeterData"]?.stringValue
        {
            signedMeterData = meterData
            signingMethod = json["signingMethod"]?.stringValue ?? ""
            encodingMethod = json["encodingMethod"]?.stringValue ?? "Other"
            publicKey = json["publicKey"]?.stringValue ?? ""
            return
        }
        signedMeterData = data
        publicKey = ""
        guard data.hasPrefix("OCMF|") else {
            signingMethod = ""
            encodingMethod = "Other"
            return
        }
        encodingMethod = "OCMF"
        let parts = data.split(separator: "|", maxSplits: 2, omittingEmptySubsequences: false)
        let payload = parts.count > 1 ? try? JSONParser.parse(String(parts[1])) : nil
        let signature = parts.count > 2 ? try? JSONParser.parse(String(parts[2])) : nil
        signingMethod = signature?["SA"]?.stringValue ?? ""
        if let first = payload?["RD"]?.arrayValue?.first, let value = first["RV"] {
            let text = value.stringValue ?? (value.jsonText)
            reading = (text, first["RU"]?.stringValue)
        }
    }

    /// Whether 2.0.1's lengths hold it (2500 for data and key, 50 for the methods).
    var fits: Bool {
        signedMeterData.count <= 2500 && publicKey.count <= 2500 && signingMethod.count <= 50
            && encodingMethod.count <= 50
    }

    var json: JSONValue {
        .object([
            (key: "signedMeterData", value: .string(signedMeterData)),
            (key: "signingMethod", value: .string(signingMethod)),
            (key: "encodingMethod", value: .string(encodingMethod)),
            (key: "publicKey", value: .string(publicKey)),
        ])
    }
}
