import Foundation
import PackagePlugin

/// Builds the schema facts of `Sources/OCPPSchema/Facts/` (JSON, generated from the official schemas by
/// `generate_facts.py`) into OCPPSchema (``SchemaFacts/builtInFiles``): the binary judges frames without any file.
@main
struct EmbedSchemaFacts: BuildToolPlugin {
    func createBuildCommands(context: PluginContext, target: any Target) throws -> [Command] {
        let folder = target.directoryURL.appending(path: "Facts")
        let facts = try FileManager.default.contentsOfDirectory(at: folder, includingPropertiesForKeys: nil)
            .filter { $0.pathExtension == "json" }
            .sorted { $0.lastPathComponent < $1.lastPathComponent }
        let output = context.pluginWorkDirectoryURL.appending(path: "BuiltInSchemaFacts.swift")
        return [
            .buildCommand(
                displayName: "Embedding the schema facts of Sources/OCPPSchema/Facts/",
                executable: try context.tool(named: "embed-texts").url,
                arguments: [output.path, "SchemaFacts", "builtInFiles"] + facts.map(\.path),
                inputFiles: facts,
                outputFiles: [output]
            )
        ]
    }
}
