import Foundation
import RelayFuzzSupport
import Testing

/// The fuzz corpus (`Tests/Fuzz/corpus`, grown by `Tests/Fuzz/run.sh` with libFuzzer) replayed on every test run,
/// with seeded mutations of each input: the parsers of peer and file input never crash or hang.
@Suite("Fuzz corpus")
struct FuzzCorpusTests {
    static var corpus: URL { repositoryRoot().appendingPathComponent("Tests/Fuzz/corpus") }

    /// SplitMix64: the same mutations on every machine.
    struct Seeded: RandomNumberGenerator {
        var state: UInt64
        mutating func next() -> UInt64 {
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
    }

    static func mutate(_ input: [UInt8], _ rng: inout Seeded) -> [UInt8] {
        var bytes = input
        for _ in 0..<Int.random(in: 1...4, using: &rng) {
            switch Int.random(in: 0..<5, using: &rng) {
            case 0 where !bytes.isEmpty:  // flip a bit
                let i = Int.random(in: 0..<bytes.count, using: &rng)
                bytes[i] ^= 1 << UInt8.random(in: 0..<8, using: &rng)
            case 1 where !bytes.isEmpty:  // an interesting byte
                let i = Int.random(in: 0..<bytes.count, using: &rng)
                bytes[i] = [0, 0x7F, 0x80, 0xFF, 0x22, 0x5C, 0x2C, 0x5B, 0x7B, 126, 127].randomElement(using: &rng)!
            case 2 where !bytes.isEmpty:  // cut
                bytes.removeLast(Int.random(in: 0...bytes.count, using: &rng))
            case 3:  // insert random bytes
                let at = Int.random(in: 0...bytes.count, using: &rng)
                bytes.insert(
                    contentsOf: (0..<Int.random(in: 1...8, using: &rng)).map { _ in
                        UInt8.random(in: 0...255, using: &rng)
                    },
                    at: at
                )
            default:  // duplicate a run
                guard !bytes.isEmpty else { break }
                let start = Int.random(in: 0..<bytes.count, using: &rng)
                let end = min(bytes.count, start + Int.random(in: 1...64, using: &rng))
                bytes.insert(contentsOf: bytes[start..<end], at: Int.random(in: 0...bytes.count, using: &rng))
            }
        }
        return bytes
    }

    @Test(
        "every corpus input and 10,000 seeded mutations of them pass through their parser",
        .timeLimit(.minutes(2)),
        arguments: FuzzEntryPoints.targets
    )
    func replay(target: String) throws {
        let directory = Self.corpus.appendingPathComponent(target)
        let files = try FileManager.default.contentsOfDirectory(atPath: directory.path).sorted()
        #expect(!files.isEmpty, "no corpus for \(target)")
        var rng = Seeded(state: 0x6F63_7070)
        let mutations = max(10, 10_000 / max(files.count, 1))
        for file in files {
            let input = Array(try Data(contentsOf: directory.appendingPathComponent(file)))
            FuzzEntryPoints.run(target, input)
            for _ in 0..<mutations { FuzzEntryPoints.run(target, Self.mutate(input, &rng)) }
        }
    }
}
