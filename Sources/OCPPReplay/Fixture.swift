import OCPP

/// A recorded conversation as a test fixture: a header line, then the lines of `recordings show --format jsonl`
/// (JSON lines, diff-friendly, committed next to the tests that use it).
///
/// ```
/// {"fixture":1,"charger":"CP-1","version":"1.6","vendor":"Alfen BV","model":"NG920","firmware":"6.4.0",…}
/// {"time":"2026-11-27T06:00:00.000Z","connection":"…","charger":"CP-1","leg":"charger","dir":"in","version":"1.6","text":"[2,…]"}
/// ```
public struct Fixture: Sendable {
    /// What the fixture was recorded from, so a stale one is recognisable.
    public var header: FixtureHeader
    /// Frames and connection events, in recorded order.
    public var entries: [FixtureEntry]

    public init(header: FixtureHeader, entries: [FixtureEntry]) {
        self.header = header
        self.entries = entries
    }

    /// The current format version.
    public static let formatVersion = 1

    /// Parses fixture text.
    public static func parse(_ text: String) throws(FixtureError) -> Fixture {
        var lines = text.split(separator: "\n", omittingEmptySubsequences: true).makeIterator()
        guard let first = lines.next() else { throw FixtureError("the fixture is empty") }
        let headerValue: JSONValue
        do {
            headerValue = try JSONParser.parse(String(first))
        } catch {
            throw FixtureError("line 1 is not JSON: \(error)")
        }
        guard let format = headerValue["fixture"]?.intValue else {
            throw FixtureError(
                "line 1 is not a fixture header (no \"fixture\" member); `ocpp-relay recordings cut` makes fixtures"
            )
        }
        guard format <= formatVersion else {
            throw FixtureError("fixture format \(format) is newer than this relay reads (\(formatVersion))")
        }
        var entries: [FixtureEntry] = []
        var number = 1
        while let line = lines.next() {
            number += 1
            do {
                entries.append(try FixtureEntry(try JSONParser.parse(String(line))))
            } catch let error as FixtureError {
                throw FixtureError("line \(number): \(error.message)")
            } catch {
                throw FixtureError("line \(number) is not JSON: \(error)")
            }
        }
        return Fixture(header: FixtureHeader(headerValue), entries: entries)
    }

    /// The fixture as text.
    public var text: String {
        ([header.json.jsonText] + entries.map(\.json.jsonText)).joined(separator: "\n") + "\n"
    }
}

/// The first line of a fixture.
public struct FixtureHeader: Sendable, Hashable {
    public var charger: String
    /// The charger leg's OCPP version (`1.6`, `2.0.1`).
    public var version: String
    /// The upstream leg's version when it differs (a translated recording).
    public var upstreamVersion: String?
    public var vendor: String?
    public var model: String?
    public var firmware: String?
    public var relayVersion: String?
    /// When the recording started (RFC 3339).
    public var recorded: String?
    /// What it was cut from (file, connection, window or transaction).
    public var source: String?

    public init(
        charger: String,
        version: String,
        upstreamVersion: String? = nil,
        vendor: String? = nil,
        model: String? = nil,
        firmware: String? = nil,
        relayVersion: String? = nil,
        recorded: String? = nil,
        source: String? = nil
    ) {
        self.charger = charger
        self.version = version
        self.upstreamVersion = upstreamVersion
        self.vendor = vendor
        self.model = model
        self.firmware = firmware
        self.relayVersion = relayVersion
        self.recorded = recorded
        self.source = source
    }

    init(_ value: JSONValue) {
        charger = value["charger"]?.stringValue ?? ""
        version = value["version"]?.stringValue ?? ""
        upstreamVersion = value["upstreamVersion"]?.stringValue
        vendor = value["vendor"]?.stringValue
        model = value["model"]?.stringValue
        firmware = value["firmware"]?.stringValue
        relayVersion = value["relayVersion"]?.stringValue
        recorded = value["recorded"]?.stringValue
        source = value["source"]?.stringValue
    }

    var json: JSONValue {
        .object(omittingNil: [
            "fixture": .int(Fixture.formatVersion),
            "charger": .string(charger),
            "version": .string(version),
            "upstreamVersion": upstreamVersion.map(JSONValue.string),
            "vendor": vendor.map(JSONValue.string),
            "model": model.map(JSONValue.string),
            "firmware": firmware.map(JSONValue.string),
            "relayVersion": relayVersion.map(JSONValue.string),
            "recorded": recorded.map(JSONValue.string),
            "source": source.map(JSONValue.string),
        ])
    }
}

/// One line after the header: a frame (`text`) or an event (`event`), as `recordings show --format jsonl` prints it.
public struct FixtureEntry: Sendable, Hashable {
    /// All members as they were (kept so a fixture round-trips unchanged).
    public var value: JSONValue

    public init(_ value: JSONValue) throws(FixtureError) {
        guard value["time"]?.stringValue != nil else { throw FixtureError("an entry has no time") }
        guard value["text"] != nil || value["event"] != nil || value["binary"] != nil else {
            throw FixtureError("an entry is neither a frame nor an event")
        }
        self.value = value
    }

    var json: JSONValue { value }

    public var time: String { value["time"]?.stringValue ?? "" }
    public var leg: String? { value["leg"]?.stringValue }
    public var direction: String? { value["dir"]?.stringValue }
    public var text: String? { value["text"]?.stringValue }
    public var event: String? { value["event"]?.stringValue }
    public var version: String? { value["version"]?.stringValue }
}

/// A fixture could not be read.
public struct FixtureError: Error, Sendable, Hashable, CustomStringConvertible {
    public let message: String

    public init(_ message: String) {
        self.message = message
    }

    public var description: String { message }
}
