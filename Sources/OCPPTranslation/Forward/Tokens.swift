import OCPP

extension ForwardRules {
    /// The 2.0.1 token for a 1.6 idTag: the type the backend used for it, else the table's rules.
    func idToken(_ idTag: String) -> JSONValue {
        .object([(key: "idToken", value: .string(idTag)), (key: "type", value: .string(tokenType(idTag)))])
    }

    func tokenType(_ idTag: String) -> String {
        state.tokenTypes[idTag] ?? tables.tokenTypes.type(of: idTag)
    }

    /// 2.0.1 `idTokenInfo` → 1.6 `idTagInfo`.
    func idTagInfo(_ info: JSONValue?) -> JSONValue? {
        guard let info, let status = info["status"]?.stringValue else { return nil }
        let mapped = tables.enumMap(.authorizationStatus201To16).map(status) ?? "Invalid"
        var parent: JSONValue?
        if let group = info.value(at: "groupIdToken.idToken")?.stringValue, group.count <= 20 {
            parent = .string(group)
        }
        return .object(omittingNil: [
            "status": .string(mapped),
            "expiryDate": info["cacheExpiryDateTime"],
            "parentIdTag": parent,
        ])
    }
}
