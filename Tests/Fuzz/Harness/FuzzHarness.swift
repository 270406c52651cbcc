// The libFuzzer harness for FuzzEntryPoints (see Tests/Fuzz/run.sh). Built with `-sanitize=fuzzer -DFUZZING`,
// libFuzzer drives it; built normally, it replays the inputs named on its command line.
import Foundation
import RelayFuzzSupport

private let target = ProcessInfo.processInfo.environment["FUZZ_TARGET"] ?? "rpc"

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOneInput(_ start: UnsafePointer<UInt8>?, _ count: Int) -> CInt {
    let bytes = start.map { Array(UnsafeBufferPointer(start: $0, count: count)) } ?? []
    FuzzEntryPoints.run(target, bytes)
    return 0
}

#if FUZZING
    /// libFuzzer's driver, for programs that have a main of their own (SwiftPM's executables do).
    @_silgen_name("LLVMFuzzerRunDriver")
    func LLVMFuzzerRunDriver(
        _ argc: UnsafeMutablePointer<CInt>,
        _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>>,
        _ callback: @convention(c) (UnsafePointer<UInt8>?, Int) -> CInt
    ) -> CInt
#endif

@main
struct FuzzHarness {
    static func main() throws {
        #if FUZZING
            var argc = CommandLine.argc
            var argv = CommandLine.unsafeArgv
            exit(LLVMFuzzerRunDriver(&argc, &argv, fuzzOneInput))
        #else
            for path in CommandLine.arguments.dropFirst() {
                let data = try Data(contentsOf: URL(fileURLWithPath: path))
                _ = data.withUnsafeBytes { fuzzOneInput($0.bindMemory(to: UInt8.self).baseAddress, $0.count) }
            }
        #endif
    }
}
