import OCPP

/// Reservations of a 1.6 charger for a 2.0.1 backend: 2.0.1 expects ReservationStatusUpdate when a reservation
/// expires or is removed (H01.FR.07/09), which 1.6 has no message for. The relay remembers the reservations the
/// charger accepted and tells the backend when a reserved connector becomes free without the reservation's
/// transaction (Expired once the expiry time has passed, Removed before it), or, for a charger that says nothing,
/// when the expiry time passes (checked with the call timeouts, every second while a reservation is open).
extension ForwardRules {
    mutating func reserveNow(
        _ call: RPCFrame.Call,
        _ mapping: ActionMapping,
        _ io: inout Effects<Self>
    ) throws(Untranslatable) {
        let payload = try tables.apply(mapping.request ?? [], to: call.payload, action: call.action, &io)
        guard let id = call.payload["id"]?.intValue, let expiry = call.payload["expiryDateTime"]?.stringValue else {
            throw Untranslatable(message: "id and expiryDateTime are required")
        }
        let reservation = ForwardState.Reservation(
            id: id,
            connector: payload["connectorId"]?.intValue ?? 0,
            expiry: expiry
        )
        io.toCharger(call, as: mapping.action ?? call.action, payload, .reservation(mapping, .reserve(reservation)))
    }

    mutating func cancelReservation(
        _ call: RPCFrame.Call,
        _ mapping: ActionMapping,
        _ io: inout Effects<Self>
    ) throws(Untranslatable) {
        let payload = try tables.apply(mapping.request ?? [], to: call.payload, action: call.action, &io)
        guard let id = call.payload["reservationId"]?.intValue else {
            throw Untranslatable(message: "reservationId is required")
        }
        io.toCharger(call, as: mapping.action ?? call.action, payload, .reservation(mapping, .cancel(id)))
    }

    /// The charger answered ReserveNow or CancelReservation: an accepted change is remembered.
    mutating func reservationAnswered(_ change: ReservationChange, status: String?) {
        guard status == "Accepted" else { return }
        switch change {
        case .reserve(let reservation):
            state.reservations.removeAll { $0.id == reservation.id }
            state.reservations.append(reservation)
        case .cancel(let id):
            state.reservations.removeAll { $0.id == id }
        }
        markChanged()
    }

    /// Reservations whose expiry time has passed unused: Expired.
    mutating func expireReservations(_ io: inout Effects<Self>) {
        guard !state.reservations.isEmpty, let now = RFC3339.parse(now())?.micros else { return }
        let expired = state.reservations.filter { RFC3339.parse($0.expiry).map { $0.micros <= now } ?? false }
        guard !expired.isEmpty else { return }
        state.reservations.removeAll { reservation in expired.contains { $0.id == reservation.id } }
        markChanged()
        for reservation in expired { reportEnded(reservation, "Expired", &io) }
    }

    /// A transaction started on a connector: its reservation (named, or the connector's) is used.
    mutating func reservationUsed(_ reservationId: Int?, connector: Int) {
        let before = state.reservations.count
        state.reservations.removeAll { $0.id == reservationId || $0.connector == connector }
        if state.reservations.count != before { markChanged() }
    }

    /// A connector left Reserved for a status without a transaction: its reservation ended unused.
    mutating func reservationEnded(
        connector: Int,
        previous: String?,
        status: String,
        timestamp: JSONValue,
        _ io: inout Effects<Self>
    ) {
        guard previous == "Reserved", ["Available", "Unavailable", "Faulted"].contains(status),
            let index = state.reservations.firstIndex(where: { $0.connector == connector })
                ?? state.reservations.firstIndex(where: { $0.connector == 0 })
        else { return }
        let reservation = state.reservations.remove(at: index)
        markChanged()
        let at = RFC3339.parse(timestamp.stringValue ?? now())?.micros
        let expires = RFC3339.parse(reservation.expiry)?.micros
        let expired = at.flatMap { at in expires.map { at >= $0 } } ?? false
        reportEnded(reservation, expired ? "Expired" : "Removed", &io)
    }

    /// Tells the backend how a reservation ended (ReservationStatusUpdate, the relay's own call).
    private mutating func reportEnded(
        _ reservation: ForwardState.Reservation,
        _ status: String,
        _ io: inout Effects<Self>
    ) {
        io.sendUpstream(
            "ReservationStatusUpdate",
            .object([
                (key: "reservationId", value: .int(reservation.id)),
                (key: "reservationUpdateStatus", value: .string(status)),
            ]),
            .relay
        )
    }
}

/// What an accepted ReserveNow or CancelReservation changes.
enum ReservationChange: Sendable {
    case reserve(ForwardState.Reservation)
    case cancel(Int)
}
