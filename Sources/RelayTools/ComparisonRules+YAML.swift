import Foundation
import OCPPReplay
import Yams

extension ComparisonRules {
    /// The defaults plus a YAML rules file:
    /// ```yaml
    /// ignore:                     # per action (or "*"), member names or dotted paths ([*] for array elements)
    ///   "*": [meterValue[*].sampledValue[*].value]
    ///   BootNotification.result: [interval]
    /// bind: [chargingProfileId]   # more members whose live values are learned
    /// ```
    public static func load(path: String) throws(ToolInputError) -> ComparisonRules {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw ToolInputError("cannot read the replay rules \(path)")
        }
        struct File: Decodable {
            var ignore: [String: [String]]?
            var bind: [String]?
        }
        do {
            let file = try YAMLDecoder().decode(File.self, from: String(decoding: data, as: UTF8.self))
            var rules = ComparisonRules.defaults.adding(ignore: file.ignore ?? [:])
            rules.bind.formUnion(file.bind ?? [])
            return rules
        } catch {
            throw ToolInputError("\(path): \(error)")
        }
    }
}
