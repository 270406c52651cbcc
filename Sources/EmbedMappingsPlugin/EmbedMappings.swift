import Foundation
import PackagePlugin

/// Builds the tables of `Mappings/` into OCPPTranslation (``MappingTables/builtInFiles``), so that an installed
/// binary translates from any working folder. `Mappings/` stays the editable source; `translation.mappings`
/// points the relay at an edited copy.
@main
struct EmbedMappings: BuildToolPlugin {
    func createBuildCommands(context: PluginContext, target: any Target) throws -> [Command] {
        let folder = context.package.directoryURL.appending(path: "Mappings")
        let tables = try FileManager.default.contentsOfDirectory(at: folder, includingPropertiesForKeys: nil)
            .filter { $0.pathExtension == "yaml" }
            .sorted { $0.lastPathComponent < $1.lastPathComponent }
        let output = context.pluginWorkDirectoryURL.appending(path: "BuiltInMappings.swift")
        return [
            .buildCommand(
                displayName: "Embedding the mapping tables of Mappings/",
                executable: try context.tool(named: "embed-texts").url,
                arguments: [output.path, "MappingTables", "builtInFiles"] + tables.map(\.path),
                inputFiles: tables,
                outputFiles: [output]
            )
        ]
    }
}
