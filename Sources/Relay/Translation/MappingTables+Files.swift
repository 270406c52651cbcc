import Foundation
import OCPPTranslation

extension MappingTables {
    /// Reads the tables from a folder (`Mappings/`).
    public static func load(directory: String) -> MappingTables {
        var files: [String: String] = [:]
        for name in fileNames {
            let path = (directory as NSString).appendingPathComponent(name)
            if let data = FileManager.default.contents(atPath: path) {
                files[name] = String(decoding: data, as: UTF8.self)
            }
        }
        return MappingTables(files: files)
    }
}
