import Foundation

/// Which trace events `record` turns on, from QEMU's own `trace-event-get-state {"name": "*"}`
/// (states `enabled`, `disabled`, `unavailable`: trace/qmp.c): the wanted ones that are off,
/// never touching the ones already on (they stay on when record leaves).
struct TraceEventPlan: Equatable {
    var toTurnOn: [String] = []
    var alreadyOn: [String] = []
    var notInThisQEMU: [String] = []
    /// Every event this QEMU has (to tell its trace lines from its other messages).
    var allNames: Set<String> = []

    init(states: [[String: Any]], wanted: Set<String>) {
        var state: [String: String] = [:]
        for s in states {
            guard let name = s["name"] as? String else { continue }
            state[name] = s["state"] as? String ?? "unavailable"
        }
        allNames = Set(state.keys)
        for name in wanted.sorted() {
            switch state[name] {
            case "enabled": alreadyOn.append(name)
            case "disabled": toTurnOn.append(name)
            default: notInThisQEMU.append(name)
            }
        }
    }
}
