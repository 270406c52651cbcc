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
    /// severity:                   # per action, Action.result or "*": fail | warn | ignore
    ///   Heartbeat: ignore
    /// unexpected_calls: report    # answer | report | fail
    /// match: exact                # exact | subset
    /// ```
    public static func load(path: String) throws(ToolInputError) -> ComparisonRules {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw ToolInputError("cannot read the replay rules \(path)")
        }
        struct File: Decodable {
            var ignore: [String: [String]]?
            var bind: [String]?
            var severity: [String: String]?
            var unexpected_calls: String?
            var match: String?
        }
        let file: File
        do {
            file = try YAMLDecoder().decode(File.self, from: String(decoding: data, as: UTF8.self))
        } catch {
            throw ToolInputError("\(path): \(error)")
        }
        var rules = ComparisonRules.defaults.adding(ignore: file.ignore ?? [:])
        rules.bind.formUnion(file.bind ?? [])
        for (action, text) in file.severity ?? [:] {
            guard let severity = Severity(rawValue: text) else {
                throw ToolInputError("\(path): severity of \(action): '\(text)' is not fail, warn or ignore")
            }
            rules.severity[action] = severity
        }
        if let text = file.unexpected_calls {
            guard let value = UnexpectedCalls(rawValue: text) else {
                throw ToolInputError("\(path): unexpected_calls: '\(text)' is not answer, report or fail")
            }
            rules.unexpectedCalls = value
        }
        if let text = file.match {
            guard let value = MatchMode(rawValue: text) else {
                throw ToolInputError("\(path): match: '\(text)' is not exact or subset")
            }
            rules.match = value
        }
        return rules
    }
}
