import Foundation
import KVMScopeCore

/// What `record` changed in a VM, written to `record-state.json` in the output directory
/// *before* each change, so `kvmscope record --restore` can undo it after a SIGKILL.
public struct RecordState: Codable, Sendable, Equatable {
    public static let fileName = "record-state.json"
    public var schemaVersion = JSONContract.schemaVersion
    /// The monitor, as `QMPAddress` prints it.
    public var qmp: String
    public var qemuPid: Int32?
    /// Events record turned on (only these are turned off again; ones already on stay on).
    public var eventsTurnedOn: [String] = []
    /// Where QEMU's log went before: its `-D` file, or nil for stderr.
    public var logFileBefore: String?
    /// True once record pointed QEMU's log at its own file (so a restore must point it back).
    public var logFileRedirected = false
    /// The staging files QEMU's log was pointed at (outside the capture: QEMU's user must
    /// reach them); removed once QEMU's log is pointed back.
    public var stagingDirectory: String?
    public var restored = false

    public init(qmp: String, qemuPid: Int32?, logFileBefore: String?) {
        self.qmp = qmp; self.qemuPid = qemuPid; self.logFileBefore = logFileBefore
    }

    public static func load(directory: String) throws -> RecordState {
        let path = (directory as NSString).appendingPathComponent(fileName)
        guard let data = FileManager.default.contents(atPath: path) else {
            throw KVMScopeError.usage("'\(path)': no record state here (was `kvmscope record -o \(directory)` run?)")
        }
        do { return try JSONDecoder().decode(RecordState.self, from: data) } catch {
            throw KVMScopeError.unsupportedFormat(path: path, detail: "not a kvmscope record state file")
        }
    }

    /// Rewritten in place in space taken at the first write (ReservedFile): a full output
    /// filesystem never keeps record from writing that the VM was restored.
    public func save(directory: String) throws {
        let enc = JSONEncoder()
        enc.outputFormatting = [.prettyPrinted, .sortedKeys]
        try ReservedFile.write(try enc.encode(self), to: (directory as NSString).appendingPathComponent(Self.fileName), reserve: 16 << 10)
    }

    /// Where to point QEMU's log back to: the `-D` file, or QEMU's own stderr (which
    /// /dev/stderr opened inside QEMU is: util/log.c opens the name it is given).
    public var logFileToRestore: String { logFileBefore ?? "/dev/stderr" }
}
