import Logging
import NIOCore
import NIOSSL
import RelayConfig
import RelayObservability
import SwiftASN1
import X509

/// The TLS contexts of a relay, made once at start from the configured files.
struct TLSContexts: Sendable {
    /// For the chargers' listener (`nil`: plaintext).
    let listener: NIOSSLContext?
    /// For wss:// upstreams (always made: a route may name a wss:// upstream).
    let upstream: NIOSSLContext

    init(listener: ListenerTLS?, upstream: UpstreamTLSFiles?) throws(ConfigurationError) {
        if let listener {
            self.listener = try Self.listenerContext(listener)
        } else {
            self.listener = nil
        }
        self.upstream = try Self.upstreamContext(upstream)
    }

    private static func listenerContext(_ files: ListenerTLS) throws(ConfigurationError) -> NIOSSLContext {
        var configuration = TLSConfiguration.makeServerConfiguration(
            certificateChain: try certificates(files.certificate, setting: "tls.certificate").map { .certificate($0) },
            privateKey: try privateKey(files.key, setting: "tls.key")
        )
        configuration.minimumTLSVersion = .tlsv12
        if let ca = files.clientCA {
            configuration.trustRoots = .certificates(try Self.certificates(ca, setting: "tls.client_ca"))
            // Client certificates are required and must chain to the CA; their names are checked by the relay.
            configuration.certificateVerification = .noHostnameVerification
        }
        return try context(configuration, setting: "tls")
    }

    /// The server configuration of the listener's certificate and key, without client certificates: for the
    /// console, whose users log in with passwords.
    static func serverConfiguration(_ files: ListenerTLS) throws(ConfigurationError) -> TLSConfiguration {
        var configuration = TLSConfiguration.makeServerConfiguration(
            certificateChain: try certificates(files.certificate, setting: "tls.certificate").map { .certificate($0) },
            privateKey: try privateKey(files.key, setting: "tls.key")
        )
        configuration.minimumTLSVersion = .tlsv12
        return configuration
    }

    private static func upstreamContext(_ files: UpstreamTLSFiles?) throws(ConfigurationError) -> NIOSSLContext {
        var configuration = TLSConfiguration.makeClientConfiguration()
        configuration.minimumTLSVersion = .tlsv12
        if let ca = files?.ca {
            configuration.trustRoots = .certificates(try certificates(ca, setting: "upstream_tls.ca"))
        }
        if let certificate = files?.certificate, let key = files?.key {
            configuration.certificateChain = try certificates(certificate, setting: "upstream_tls.certificate").map {
                .certificate($0)
            }
            configuration.privateKey = try privateKey(key, setting: "upstream_tls.key")
        }
        return try context(configuration, setting: "upstream_tls")
    }

    private static func certificates(
        _ path: String,
        setting: String
    ) throws(ConfigurationError) -> [NIOSSLCertificate] {
        do {
            let chain = try NIOSSLCertificate.fromPEMFile(path)
            guard !chain.isEmpty else { throw ConfigurationError("no certificate in it") }
            return chain
        } catch {
            throw ConfigurationError("\(setting): cannot read certificates from \(path): \(error)")
        }
    }

    private static func privateKey(_ path: String, setting: String) throws(ConfigurationError) -> NIOSSLPrivateKeySource
    {
        do {
            return .privateKey(try NIOSSLPrivateKey(file: path, format: .pem))
        } catch {
            throw ConfigurationError("\(setting): cannot read a PEM private key from \(path): \(error)")
        }
    }

    private static func context(
        _ configuration: TLSConfiguration,
        setting: String
    ) throws(ConfigurationError)
        -> NIOSSLContext
    {
        do {
            return try NIOSSLContext(configuration: configuration)
        } catch {
            throw ConfigurationError("\(setting): \(error)")
        }
    }

    /// The subject common name of a peer certificate (the most significant one, as TLS name checks use).
    static func commonName(of certificate: NIOSSLCertificate) -> String? {
        guard let der = try? certificate.toDERBytes(), let parsed = try? Certificate(derEncoded: der) else {
            return nil
        }
        var name: String?
        for rdn in parsed.subject {
            for attribute in rdn where attribute.type == .RDNAttributeType.commonName {
                name = String(attribute.value)
            }
        }
        return name
    }
}

/// Logs why a TLS connection failed (a charger without a certificate from the CA, an old protocol version, a
/// client that is not speaking TLS at all), once per connection, then lets the error travel on.
final class TLSFailureLogger: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = NIOAny
    private let logger: Logger
    private let metrics: RelayMetrics
    private var logged = false

    init(logger: Logger, metrics: RelayMetrics) {
        self.logger = logger
        self.metrics = metrics
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        if !logged, error is NIOSSLError || error is BoringSSLError {
            logged = true
            metrics.tlsHandshakeFailed()
            logger.notice(
                "TLS handshake failed; connection dropped",
                metadata: [
                    "remote": "\(Handshake.describe(context.channel.remoteAddress) ?? "?")", "error": "\(error)",
                ]
            )
        }
        context.fireErrorCaught(error)
    }
}

extension ListenerTLS {
    /// A TLS server configuration with this certificate and key (the console serves the listener's certificate).
    public func serverConfiguration() throws(ConfigurationError) -> TLSConfiguration {
        try TLSContexts.serverConfiguration(self)
    }
}
