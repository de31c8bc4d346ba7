/// SCSI requests rebuilt from QEMU's virtio-scsi, SCSI bus and scsi-disk trace events
/// (`virtio_scsi_*`, `scsi_req_*`, `scsi_disk_*`), as `kvmscope trace` reports them.
/// JSON keys are documented in docs/json.md (`keys trace`, under `scsi`).
public struct ScsiReport: Sendable, Equatable, Codable {
    /// The trace has SCSI events (when false, everything below is empty).
    public var seen: Bool
    public var requests: ScsiRequestCounts
    public var devices: [ScsiDeviceSummary]
    /// All failed requests, however many; `failures` holds the first `failuresShown`.
    public var failuresTotal: Int
    public var failuresShown: Int
    public var failures: [ScsiFailure]
    /// Requests with no completion by the end of the trace (only counted when the trace
    /// holds a completion event family: `virtio_scsi_cmd_resp` or `scsi_req_dequeue`).
    public var inFlightTotal: Int
    public var inFlight: [ScsiInFlightRequest]

    public init() {
        seen = false
        requests = ScsiRequestCounts()
        devices = []
        failuresTotal = 0
        failuresShown = 0
        failures = []
        inFlightTotal = 0
        inFlight = []
    }
}

public struct ScsiRequestCounts: Sendable, Equatable, Codable {
    /// Completed with GOOD status (virtio_scsi_cmd_resp status 0, response OK), or dequeued
    /// with no sense built when virtio_scsi_cmd_resp is not traced.
    public var completed = 0
    /// Completed with another status or virtio response, or with sense data built.
    public var failed = 0
    /// Seen but never completed by the end of the trace (see `ScsiReport.inFlightTotal`).
    public var inFlightAtEnd = 0
    /// Cancelled by QEMU (`scsi_req_cancel`: device reset, task management, hot-unplug).
    public var cancelled = 0
    /// Requests whose end the trace cannot show (no completion events traced).
    public var outcomeUnknown = 0
    /// CHECK CONDITION with UNIT ATTENTION: the device announcing a reset or a change (QEMU
    /// sets one at every device reset); the guest retries the command. Not failures.
    public var unitAttentions = 0
    /// Non-data commands (REPORT LUNS, INQUIRY, MAINTENANCE IN, …) answered BAD_TARGET or
    /// INCORRECT_LUN (the guest's bus scan of absent targets), ILLEGAL REQUEST or NOT READY
    /// (the guest probing what a device supports). Not failures.
    public var rejectedProbes = 0
    public init() {}
}

/// One SCSI logical unit, as its events name it.
public struct ScsiDeviceSummary: Sendable, Equatable, Codable {
    /// SCSI target id (`scsi-id`), from the `scsi_req_*` events; nil when only virtio-scsi's
    /// events (which print the LUN alone) were traced.
    @NullEncoded public var target: Int? = nil
    @NullEncoded public var lun: Int? = nil
    /// Logical block size in bytes, when the trace shows it (see `ScsiFailure.blockSizeSource`).
    @NullEncoded public var blockSize: Int? = nil
    public var completed: Int
    public var failed: Int
    public var inFlightAtEnd: Int
}

/// A SCSI command as the CDB states it.
public struct ScsiCommand: Sendable, Equatable, Codable {
    public var opcode: Int
    /// `WRITE(10)`, `SYNCHRONIZE CACHE(10)`, … (SPC/SBC names), or `opcode 0xNN`.
    public var name: String
    /// `read`, `write`, `flush`, `discard`, `write-same`, `verify`, `other`.
    public var kind: String
    /// Logical block address (in logical blocks), from the CDB or `scsi_req_parsed_lba`.
    @NullEncoded public var lba: UInt64? = nil
    /// Transfer length in logical blocks, from the CDB.
    @NullEncoded public var blocks: UInt64? = nil
    /// Bytes to transfer as QEMU parsed them (`scsi_req_parsed` length).
    @NullEncoded public var transferBytes: UInt64? = nil
    /// The CDB bytes in hex, when `scsi_disk_new_request` printed them.
    @NullEncoded public var cdb: String? = nil
}

/// Sense data: key, additional sense code and qualifier, with their SPC names.
public struct ScsiSense: Sendable, Equatable, Codable {
    public var key: Int
    /// `ABORTED COMMAND`, `MEDIUM ERROR`, …
    public var keyName: String
    public var asc: Int
    public var ascq: Int
    /// `I/O PROCESS TERMINATED`, `WRITE ERROR`, … or nil when the pair is not in kvmscope's table.
    @NullEncoded public var ascName: String? = nil
    /// The host errno QEMU maps to this sense (scsi_sense_from_errno, QEMU 7.2 scsi/utils.c),
    /// when it is one QEMU builds from an errno: `EIO or another errno …`, `ENOSPC`, …
    @NullEncoded public var hostErrno: String? = nil
    /// Which event showed it: `scsi_disk_check_condition` or `scsi_req_build_sense`.
    public var source: String
}

/// One failed SCSI request.
public struct ScsiFailure: Sendable, Equatable, Codable {
    @NullEncoded public var target: Int? = nil
    @NullEncoded public var lun: Int? = nil
    /// The request tag (`0x…`, 32 bits: what QEMU's events print).
    public var tag: String
    @NullEncoded public var command: ScsiCommand? = nil
    /// The LBA range in 512-byte sectors (what a guest's `sd` messages print): `lba ×
    /// blockSize / 512`, and `transferBytes / 512` (or `blocks × blockSize / 512`).
    @NullEncoded public var sector: UInt64? = nil
    @NullEncoded public var sectors: UInt64? = nil
    @NullEncoded public var blockSize: Int? = nil
    /// `transfer` (transferBytes ÷ CDB blocks of this or another request to the LUN),
    /// `assumed` (512: scsi-hd's default
    /// logical_block_size; the trace did not show it), or nil when there is no LBA.
    @NullEncoded public var blockSizeSource: String? = nil
    /// SCSI status byte (SAM): 2 CHECK CONDITION, 8 BUSY, …; nil when not traced.
    @NullEncoded public var status: Int? = nil
    @NullEncoded public var statusName: String? = nil
    /// virtio-scsi response (VIRTIO_SCSI_S_*): 0 OK, 9 FAILURE, …; nil when not traced.
    @NullEncoded public var response: Int? = nil
    @NullEncoded public var responseName: String? = nil
    @NullEncoded public var sense: ScsiSense? = nil
    /// 1 for the first failure of this command (opcode and LBA) on this LUN, 2 for the next
    /// (the guest's sd retries a failed command as a new one, often with the same tag), …;
    /// nil past the number of distinct commands followed.
    @NullEncoded public var attempt: Int? = nil
    /// When QEMU completed it (seconds in the trace's clock), and since the trace started.
    @NullEncoded public var time: Double? = nil
    @NullEncoded public var sinceStart: Double? = nil
    /// One sentence for people.
    public var explanation: String

    enum CodingKeys: String, CodingKey {
        case target, lun, tag, command, sector, sectors, blockSize, blockSizeSource, status, statusName
        case response, responseName, sense, attempt, time, sinceStart = "sinceStartSeconds", explanation
    }
}

/// A SCSI request seen and not completed by the end of the trace.
public struct ScsiInFlightRequest: Sendable, Equatable, Codable {
    @NullEncoded public var target: Int? = nil
    @NullEncoded public var lun: Int? = nil
    public var tag: String
    @NullEncoded public var command: ScsiCommand? = nil
    @NullEncoded public var sector: UInt64? = nil
    @NullEncoded public var sectors: UInt64? = nil
    @NullEncoded public var ageSeconds: Double? = nil
    @NullEncoded public var since: Double? = nil

    enum CodingKeys: String, CodingKey {
        case target, lun, tag, command, sector, sectors, ageSeconds, since = "sinceTime"
    }
}
