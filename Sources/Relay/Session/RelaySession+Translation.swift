import Logging
import NIOCore
import NIOPosix
import NIOWebSocket
import OCPP
import OCPPTranslation
import RelayConfig
import RelayObservability
import RelayRecording
import RelayStateStores

/// The translation of a charger for an upstream of the other version: its engine, where its state is written, and
/// how its passwords are kept. A class, so that the engine is mutated in place.
///
/// Confined to its session's event loop.
final class Translator {
    var session: any VersionTranslation
    let writer: StateWriter
    /// Diagnostics already logged for this charger (each kind and action once).
    var logged: Set<String> = []

    /// Where a password the backend changes goes, and the PBKDF2 rounds of its hash (the configured hash's):
    /// set when the relay checks this charger's password itself.
    let passwords: (store: any ChargerPasswordStore, rounds: Int?)?

    init(
        session: any VersionTranslation,
        writer: StateWriter,
        passwords: (store: any ChargerPasswordStore, rounds: Int?)? = nil
    ) {
        self.session = session
        self.writer = writer
        self.passwords = passwords
    }
}

extension RelaySession {
    /// Records the frame as it came, translates it and sends (and records) what the translation says.
    func translate(_ data: ByteBuffer, opcode: WebSocketOpcode, from leg: LegID) {
        guard let translator else { return }
        // Counted in the charger's terms (its actions and ids); translated frames upstream are not.
        record(
            data,
            leg: leg,
            direction: .in,
            opcode: opcode.rawValueForRecording,
            forwarded: false,
            countedAs: leg == .charger && opcode == .text ? 0 : nil
        )
        recorder.scheduleFlush()
        guard opcode == .text else {
            note(leg, "binary message cannot be translated; dropped")
            return
        }
        let text = String(buffer: data)
        let outputs =
            leg == .charger
            ? translator.session.fromCharger(text, cause: consoleCause)
            : translator.session.fromUpstream(text, cause: consoleCause)
        handle(outputs)
    }

    /// Performs what the translation returned. A state to persist goes to the loop's writer; the engine keeps the
    /// frames that depend on it (and every later one, to keep their order) until it is stored: a relay killed after
    /// a StartTransaction.conf still knows the transaction when the StopTransaction comes.
    func handle(_ outputs: [TranslationOutput]) {
        for output in outputs {
            switch output {
            case .toUpstream(let frame): sendTranslated(frame, to: .upstream(0))
            case .toCharger(let frame): sendTranslated(frame, to: .charger)
            case .diagnostic(let diagnostic):
                metrics.translationDiagnostic(diagnostic.kind.rawValue)
                let leg: LegID = diagnostic.side == .charger ? .charger : .upstream(0)
                note(leg, "translation \(diagnostic)", logKey: "\(diagnostic.kind.rawValue) \(diagnostic.action)")
            case .persist(let state, let write):
                translator?.writer.persist(identity.value, state) { [self] result in stored(write, result) }
            case .passwordChanged(let password):
                passwordChanged(password)
            }
        }
        finishDrainIfDone()
    }

    /// A state write finished: what waited for it goes out, in order.
    private func stored(_ write: Int, _ result: Result<Void, any Error>) {
        guard let translator else { return }
        if case .failure(let error) = result {
            // The frames still go (the state lives on in memory); loudly.
            logger.error("cannot store the translation state", metadata: ["error": "\(error)"])
            recordError(.upstream(0), "translation state not stored: \(error)")
        }
        for held in translator.session.stored(write) {
            consoleCause = held.cause
            handle(held.outputs)
        }
    }

    /// The charger accepted a password from the backend. When the relay checks this charger's password, it stores
    /// the new one (hashed, off the event loop), which supersedes the configured one from then on; otherwise the
    /// backend owns the credentials and nothing is kept. The password itself is never logged or recorded.
    private func passwordChanged(_ password: String) {
        guard let passwords = translator?.passwords else {
            note(.upstream(0), "the charger accepted a new password from the backend (the backend checks it)")
            return
        }
        let identity = identity.value
        let logger = self.logger
        let rounds = passwords.rounds ?? PasswordHash.defaultRounds
        note(
            .upstream(0),
            "the charger accepted a new password from the backend; the relay accepts only it from now on"
        )
        Task {
            do {
                // PBKDF2 takes milliseconds: on the thread pool, as every password check of the relay.
                let hash = try await NIOThreadPool.singleton.runIfActive {
                    PasswordHash.make(password: password, rounds: rounds)
                }
                try await passwords.store.storeChangedPassword(hash, of: identity)
            } catch {
                logger.error(
                    "the charger's new password could not be stored: it will be refused until auth.passwords has it",
                    metadata: ["error": "\(error)"]
                )
            }
        }
    }

    /// Records a translation note, and logs it the first time its key comes up.
    private func note(_ leg: LegID, _ message: String, logKey: String? = nil) {
        recordError(leg, message)
        if translator?.logged.insert(logKey ?? message).inserted == true {
            logger.notice("\(message)")
        }
    }

    private func sendTranslated(_ text: String, to leg: LegID) {
        let data = ByteBuffer(string: text)
        record(
            data,
            leg: leg,
            direction: .out,
            opcode: 1,
            forwarded: false,
            countedAs: leg == .charger ? 1 : nil
        )
        recorder.afterFlush { [self] in deliver(data, opcode: .text, to: leg) }
        if leg == .charger { mirrorsToCharger(data) }
    }
}
