import ArgumentParser
import Logging

enum Logging {
    /// A logger writing to standard error at `level` (default info).
    static func makeLogger(level: String?) throws -> Logger {
        let parsed: Logger.Level
        if let level {
            guard let value = Logger.Level(rawValue: level.lowercased()) else {
                throw ValidationError(
                    "unknown log level '\(level)' (trace, debug, info, notice, warning, error, critical)"
                )
            }
            parsed = value
        } else {
            parsed = .info
        }
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = parsed
            return handler
        }
        var logger = Logger(label: "ocpp-relay")
        logger.logLevel = parsed
        return logger
    }
}
