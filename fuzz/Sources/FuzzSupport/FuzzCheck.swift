import Foundation
import KVMScope

/// Invariant checks for the fuzz targets. A broken invariant is reported like a crash (abort),
/// so libFuzzer saves the input as `crash-*` and the smoke run fails.
public enum FuzzCheck {
    /// Stops the run when `condition` does not hold, naming what broke.
    public static func require(_ condition: @autoclosure () -> Bool, _ what: @autoclosure () -> String,
                               file: StaticString = #fileID, line: UInt = #line) {
        if !condition() {
            FileHandle.standardError.write(Data("fuzz invariant broken at \(file):\(line): \(what())\n".utf8))
            abort()
        }
    }

    /// The costly checks (JSON round trips, running the same input again, text rendering) take
    /// most of an execution; FUZZ_THOROUGH_EVERY=N runs them on one input in N, chosen by the
    /// input's hash so that a saved crash input reproduces (default 1: every input).
    public static let thoroughEvery: UInt64 = {
        let text = ProcessInfo.processInfo.environment["FUZZ_THOROUGH_EVERY"] ?? "1"
        return max(1, UInt64(text) ?? 1)
    }()

    public static func thorough(_ bytes: [UInt8]) -> Bool {
        if thoroughEvery == 1 { return true }
        var h: UInt64 = 0xcbf29ce484222325                 // FNV-1a
        for b in bytes { h = (h ^ UInt64(b)) &* 0x100000001b3 }
        return h % thoroughEvery == 0
    }

    /// Where two lists first differ, for invariant messages.
    public static func firstDifference<T: Equatable>(_ a: [T], _ b: [T]) -> String {
        for i in 0..<min(a.count, b.count) where a[i] != b[i] {
            return "item \(i) of \(a.count): \(a[i]) then \(b[i])"
        }
        return "counts \(a.count) then \(b.count)"
    }

    /// The bytes libFuzzer passes, as an array (readers take arrays or byte streams).
    public static func bytes(_ data: UnsafePointer<UInt8>, _ size: Int) -> [UInt8] {
        Array(UnsafeBufferPointer(start: data, count: size))
    }

    /// The JSON every `--json` report is printed with: must encode (reports never contain a
    /// value JSON cannot hold) and be valid JSON.
    public static func json<T: Encodable>(_ value: T, _ what: String) -> String {
        let text: String
        do { text = try JSONReport.encode(value) } catch {
            require(false, "\(what): JSON encoding failed: \(error)")
            return ""
        }
        let parsed = try? JSONSerialization.jsonObject(with: Data(text.utf8), options: [.fragmentsAllowed])
        require(parsed != nil, "\(what): encoder produced invalid JSON")
        return text
    }

    /// A renderer's JSON text: present and valid.
    @discardableResult
    public static func validJSON(_ text: String, _ what: String) -> String {
        require(!text.isEmpty, "\(what): JSON encoding failed")
        let parsed = try? JSONSerialization.jsonObject(with: Data(text.utf8), options: [.fragmentsAllowed])
        require(parsed != nil, "\(what): renderer produced invalid JSON")
        return text
    }

    /// encode → decode → equal, for report types that are Codable and Equatable.
    public static func roundTrips<T: Codable & Equatable>(_ value: T, _ what: String) {
        do {
            let data = try JSONEncoder().encode(value)
            let back = try JSONDecoder().decode(T.self, from: data)
            require(back == value, "\(what): JSON round trip changed the value")
        } catch {
            require(false, "\(what): JSON round trip failed: \(error)")
        }
    }

    /// encode → decode → encode gives the same bytes, for Codable types without `==`.
    public static func reencodes<T: Codable>(_ value: T, _ what: String) {
        do {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys]
            let first = try encoder.encode(value)
            let back = try JSONDecoder().decode(T.self, from: first)
            let second = try encoder.encode(back)
            require(first == second, "\(what): JSON round trip changed the encoding")
        } catch {
            require(false, "\(what): JSON round trip failed: \(error)")
        }
    }
}
