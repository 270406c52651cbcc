// swift-tools-version: 6.2
import PackageDescription

let swiftSettings: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny"),
    .enableUpcomingFeature("MemberImportVisibility"),
]

/// The frame path's targets skip dynamic exclusivity checks in release builds (measured: about a tenth of
/// the relay's CPU per round trip); debug builds and the tests keep them.
let framePathSettings: [SwiftSetting] =
    swiftSettings + [.unsafeFlags(["-enforce-exclusivity=unchecked"], .when(configuration: .release))]

let package = Package(
    name: "ocpp-relay",
    // Linux only (built and tested on Debian 12): the recorder and the relay call glibc directly (open(2) with
    // O_EXCL|O_APPEND, malloc_trim) and the benchmark reads /proc. No Apple platform is declared, because none
    // is built or tested.
    products: [
        .executable(name: "ocpp-relay", targets: ["ocpp-relay"]),
        .library(name: "OCPP", targets: ["OCPP"]),
        .library(name: "RelayRecording", targets: ["RelayRecording"]),
        .library(name: "Relay", targets: ["Relay"]),
        .library(name: "RelayTools", targets: ["RelayTools"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
        .package(url: "https://github.com/jpsim/Yams.git", from: "6.2.2"),
        .package(url: "https://github.com/groue/GRDB.swift.git", from: "7.10.0"),
        .package(url: "https://github.com/apple/swift-crypto.git", from: "3.12.3"),
        .package(url: "https://github.com/apple/swift-nio-ssl.git", from: "2.37.6"),
        .package(url: "https://github.com/apple/swift-certificates.git", from: "1.21.1"),
        .package(url: "https://github.com/apple/swift-asn1.git", from: "1.7.4"),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.4.1"),
        .package(url: "https://github.com/vapor/postgres-nio.git", from: "1.33.2"),
        .package(url: "https://github.com/hummingbird-project/hummingbird.git", from: "2.28.1"),
    ],
    targets: [
        // zlib from the system (Debian: zlib1g-dev).
        .systemLibrary(name: "CZlib", providers: [.apt(["zlib1g-dev"])]),
        // glibc's malloc_trim: memory a reconnect storm used goes back to the system once it is over.
        .systemLibrary(name: "CMalloc"),

        // Pure OCPP frame model: no I/O, no dependencies.
        .target(name: "OCPP", swiftSettings: swiftSettings),

        // The facts of the official OCPP JSON schemas (generated from the pinned `ocpp` package by the script beside
        // them, never by hand) and the judgement of a payload against them. Pure.
        .target(
            name: "OCPPSchema",
            dependencies: ["OCPP"],
            exclude: ["generate_facts.py", "Facts"],
            swiftSettings: swiftSettings,
            plugins: ["EmbedSchemaFacts"]
        ),
        // Builds Sources/OCPPSchema/Facts/ into OCPPSchema (SchemaFacts.builtInFiles).
        .plugin(
            name: "EmbedSchemaFacts",
            capability: .buildTool(),
            dependencies: ["embed-texts"],
            path: "Sources/EmbedSchemaFactsPlugin"
        ),

        // Translation between OCPP 1.6 and 2.0.1: mapping tables (data, parsed from YAML text) and the
        // per-charger translation state machine. Pure: no I/O.
        .target(
            name: "OCPPTranslation",
            dependencies: ["OCPP", "OCPPSchema", .product(name: "Yams", package: "Yams")],
            swiftSettings: swiftSettings,
            plugins: ["EmbedMappings"]
        ),
        // Builds Mappings/ into OCPPTranslation (MappingTables.builtInFiles): the binary needs no tables on disk.
        .plugin(
            name: "EmbedMappings",
            capability: .buildTool(),
            dependencies: ["embed-texts"],
            path: "Sources/EmbedMappingsPlugin"
        ),
        // Writes files' texts into Swift source for the plugins above.
        .executableTarget(name: "embed-texts", swiftSettings: swiftSettings),

        // Replay: recorded conversations as test fixtures; the comparison and the replay state machine. Pure.
        .target(
            name: "OCPPReplay",
            dependencies: ["OCPP", "OCPPSchema", .product(name: "Crypto", package: "swift-crypto")],
            swiftSettings: swiftSettings
        ),

        // The WebSocket client dialler (TCP, TLS, upgrade, subprotocols, timeout), upstream URLs, and RFC 7692's
        // permessage-deflate (its negotiation and its codec): used by the relay's legs, the built-in peers, the
        // replayer and the benchmark.
        .target(
            name: "OCPPTransport",
            dependencies: [
                "OCPP",
                "CZlib",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOWebSocket", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
            ],
            swiftSettings: swiftSettings
        ),

        // Recording format, writer and reader. Knows nothing about sockets or OCPP.
        .target(name: "RelayRecording", dependencies: ["CZlib"], swiftSettings: framePathSettings),

        // The relay's settings: the YAML file and flags read, checked and resolved into `RelayConfiguration` (routes,
        // mirrors, limits, charger access, TLS files, where state and recordings go). No networking.
        .target(
            name: "RelayConfig",
            dependencies: [
                "OCPP", "OCPPTransport", "RelayRecording",
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "Yams", package: "Yams"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "_CryptoExtras", package: "swift-crypto"),
            ],
            swiftSettings: swiftSettings
        ),

        // Where translation state lives between connections: SQLite (one relay) and PostgreSQL (several relays:
        // claims, fenced writes, LISTEN), behind OCPPTranslation's `TranslationStateStore`.
        .target(
            name: "RelayStateStores",
            dependencies: [
                "OCPPTranslation", "RelayConfig",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "PostgresNIO", package: "postgres-nio"),
            ],
            swiftSettings: swiftSettings
        ),

        // Metrics (Prometheus) and their HTTP endpoint with the health checks.
        .target(
            name: "RelayObservability",
            dependencies: [
                "OCPP", "OCPPTransport", "RelayRecording", "RelayConfig",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "Prometheus", package: "swift-prometheus"),
            ],
            swiftSettings: swiftSettings
        ),

        // The network relay on SwiftNIO: the server, the sessions and their legs, the mirrors, the recorders of the
        // event loops, TLS, the console's hub.
        .target(
            name: "Relay",
            dependencies: [
                "OCPP", "OCPPSchema", "OCPPTranslation", "OCPPReplay", "OCPPTransport", "RelayRecording", "CMalloc",
                "RelayConfig", "RelayStateStores", "RelayObservability",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOWebSocket", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "X509", package: "swift-certificates"),
                .product(name: "SwiftASN1", package: "swift-asn1"),
            ],
            swiftSettings: framePathSettings
        ),

        // The console in the browser: a Hummingbird server with its pages inside the binary, a JSON API over the
        // relay's live state and its recordings, and a live stream of one charger's frames.
        .target(
            name: "RelayConsole",
            dependencies: [
                "Relay", "RelayConfig", "RelayObservability", "RelayTools", "RelayRecording", "OCPP", "OCPPSchema",
                "OCPPReplay",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdTLS", package: "hummingbird"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
            ],
            // The pages are built into the binary (no build step, no CDN: the console works offline).
            resources: [
                .embedInCode("Assets/console.html"), .embedInCode("Assets/console.js"),
                .embedInCode("Assets/console.css"),
            ],
            swiftSettings: swiftSettings
        ),

        // Offline tools over recordings and tables: listing and printing recordings, building replay fixtures,
        // the comparison rules' and the schemas' loaders. No networking.
        .target(
            name: "RelayTools",
            dependencies: [
                "OCPP", "OCPPReplay", "OCPPSchema", "OCPPTranslation", "RelayRecording",
                .product(name: "Yams", package: "Yams"),
            ],
            swiftSettings: swiftSettings
        ),

        // The parsers' fuzz entry points (frames through the leg handler on an embedded channel, RPC frames,
        // recordings, handshakes): for the fuzz harness and the corpus test, outside the production library.
        .target(
            name: "RelayFuzzSupport",
            dependencies: [
                "Relay", "RelayConfig", "OCPP", "RelayRecording",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings
        ),

        // Built-in OCPP peers (a scripted charger and a backend) and the demo that runs them through the relay.
        .target(
            name: "OCPPPeers",
            dependencies: [
                "OCPP", "OCPPReplay", "OCPPTransport", "RelayRecording",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOWebSocket", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings
        ),

        // The demo: the relay with a built-in backend and scripted chargers, printing the recording.
        .target(
            name: "RelayDemo",
            dependencies: [
                "Relay", "RelayConfig", "RelayTools", "OCPPPeers", "OCPP", "OCPPReplay", "RelayRecording",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings
        ),

        // The benchmark: a fast load generator (chargers and backend as ChannelHandlers) that measures the
        // relay against direct connections, nginx and mitmproxy.
        .target(
            name: "OCPPBench",
            dependencies: [
                "OCPP", "OCPPTransport", "RelayRecording",
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOWebSocket", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings
        ),

        // Thin command line over the libraries.
        .executableTarget(
            name: "ocpp-relay",
            dependencies: [
                "Relay", "RelayConfig", "RelayTools", "RelayDemo", "RelayRecording", "OCPPPeers", "OCPP",
                "OCPPTranslation",
                "OCPPReplay", "OCPPBench", "OCPPTransport", "RelayConsole",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
            ],
            swiftSettings: swiftSettings
        ),

        // The fuzz harness (libFuzzer with -sanitize=fuzzer; a corpus replayer otherwise). See Tests/Fuzz/run.sh.
        .executableTarget(
            name: "ocpp-relay-fuzz",
            dependencies: ["RelayFuzzSupport"],
            path: "Tests/Fuzz/Harness",
            swiftSettings: swiftSettings
        ),

        .testTarget(name: "OCPPTests", dependencies: ["OCPP"], swiftSettings: swiftSettings),
        .testTarget(name: "OCPPSchemaTests", dependencies: ["OCPPSchema", "OCPP"], swiftSettings: swiftSettings),
        .testTarget(
            name: "OCPPTranslationTests",
            dependencies: ["OCPPTranslation", "OCPP"],
            exclude: ["Golden"],  // read through #filePath
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "OCPPPeersTests",
            dependencies: [
                "OCPPPeers", "OCPPReplay", "OCPP",
                .product(name: "NIOPosix", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "OCPPTransportTests",
            dependencies: [
                "OCPPTransport",
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOWebSocket", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(name: "OCPPReplayTests", dependencies: ["OCPPReplay", "OCPP"], swiftSettings: swiftSettings),
        .testTarget(
            name: "RelayToolsTests",
            dependencies: ["RelayTools", "OCPP", "RelayRecording"],
            swiftSettings: swiftSettings
        ),
        .testTarget(name: "RelayRecordingTests", dependencies: ["RelayRecording"], swiftSettings: swiftSettings),
        .testTarget(
            name: "RelayConsoleTests",
            dependencies: ["RelayConsole", "Relay", "RelayConfig", "RelayRecording", "OCPP"],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "RelayTests",
            dependencies: [
                "Relay", "RelayConfig", "RelayObservability", "RelayStateStores", "RelayFuzzSupport", "OCPP",
                "OCPPTranslation", "OCPPTransport", "RelayRecording",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
                .product(name: "NIOWebSocket", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings
        ),
    ]
)
