import Foundation
import OCPP
import OCPPTranslation

extension SchemaCatalog {
    /// Reads the schemas of the `ocpp` package folder (the one holding `v16/schemas` and `v201/schemas`).
    public static func load(directory: String) throws(ToolInputError) -> SchemaCatalog {
        func read(_ folder: String) throws(ToolInputError) -> [String: JSONValue] {
            let path = (directory as NSString).appendingPathComponent(folder)
            guard let names = try? FileManager.default.contentsOfDirectory(atPath: path) else {
                throw ToolInputError(
                    "\(path) does not exist: give the folder of the ocpp package (with v16/ and v201/)"
                )
            }
            var schemas: [String: JSONValue] = [:]
            for name in names where name.hasSuffix(".json") {
                guard let data = FileManager.default.contents(atPath: (path as NSString).appendingPathComponent(name)),
                    let schema = try? JSONParser.parse(Array(data))
                else { continue }
                schemas[String(name.dropLast(5))] = schema
            }
            return schemas
        }
        return SchemaCatalog(v16: try read("v16/schemas"), v201: try read("v201/schemas"))
    }
}
