import OCPPTransport
import RelayConfig

extension RelayConfiguration {
    /// What the relay agrees to with a charger offering permessage-deflate; `nil` when `compression.chargers` is off.
    var chargerDeflate: DeflatePolicy? {
        compressChargers ? DeflatePolicy(peerMaxWindowBits: compressionWindowBits) : nil
    }

    /// What the relay offers a backend; `nil` when `compression.upstream` is off.
    var upstreamDeflate: DeflatePolicy? {
        compressUpstream ? DeflatePolicy(peerMaxWindowBits: compressionWindowBits) : nil
    }
}
