// The libFuzzer harness for FuzzEntryPoints (see Tests/Fuzz/run.sh). Built with `-sanitize=fuzzer -DFUZZING`,
// libFuzzer drives it; built normally, it replays the inputs named on its command line.
import Foundation
import Relay

private let target = ProcessInfo.processInfo.environment["FUZZ_TARGET"] ?? "rpc"

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOneInput(_ start: UnsafePointer<UInt8>?, _ count: Int) -> CInt {
    let bytes = start.map { Array(UnsafeBufferPointer(start: $0, count: count)) } ?? []
    FuzzEntryPoints.run(target, bytes)
    return 0
}

#if !FUZZING
    @main
    struct Replay {
        static func main() throws {
            for path in CommandLine.arguments.dropFirst() {
                let data = try Data(contentsOf: URL(fileURLWithPath: path))
                _ = data.withUnsafeBytes { fuzzOneInput($0.bindMemory(to: UInt8.self).baseAddress, $0.count) }
            }
        }
    }
#endif
