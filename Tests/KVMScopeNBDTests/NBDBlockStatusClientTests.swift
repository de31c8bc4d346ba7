import Foundation
import Testing
import KVMScopeTestSupport
import KVMScopeCore
import KVMScopeFaults
@testable import KVMScopeNBD

/// Block status as the real clients use it: nbdinfo --map, qemu-img map/convert, nbdcopy see the
/// holes of a sparse image and read only its data.
@Suite(.serialized) struct NBDBlockStatusWithRealClientsTests {
    /// 64 MiB with 4 KiB of data at 1 MiB and 128 KiB at 40 MiB; the rest is hole.
    static let size = 64 << 20
    static let data: [(Int64, Int)] = [(1 << 20, 4096), (40 << 20, 128 << 10)]
    static let dataBytes = UInt64(4096 + (128 << 10))

    func server() throws -> TestServer { try TestServer(size: Self.size, sparseData: Self.data) }

    /// Bytes all clients read, once every connection has closed (the server may see the close
    /// after the client process has exited; nbdcopy opens several when multi-conn is offered).
    func bytesRead(_ s: TestServer) -> UInt64? {
        for _ in 0..<500 {
            let d = s.observer.disconnected
            if !d.isEmpty && d.count == s.observer.connected.count { return d.reduce(0) { $0 + $1.1.bytesRead } }
            usleep(10_000)
        }
        return nil
    }

    @Test func nbdinfoMapShowsTheHoles() throws {
        guard let nbdinfo = QemuTools.require("nbdinfo") else { return }
        let s = try server()
        let r = try runProcess(nbdinfo, ["--map", s.uri])
        #expect(r.status == 0, "\(r.stderr)")
        let rows = r.stdout.split(separator: "\n").map { $0.split(separator: " ", omittingEmptySubsequences: true).prefix(3).map(String.init) }
        #expect(rows == [["0", "1048576", "3"], ["1048576", "4096", "0"], ["1052672", "\((40 << 20) - (1 << 20) - 4096)", "3"],
                         ["\(40 << 20)", "131072", "0"], ["\((40 << 20) + (128 << 10))", "\((24 << 20) - (128 << 10))", "3"]], "\(r.stdout)")
    }

    /// (start, length, data, zero) of `qemu-img map --output=json`.
    func map(_ qemuImg: String, _ target: String) throws -> [[String]] {
        let r = try runProcess(qemuImg, ["map", "--output=json", "-f", "raw", target])
        #expect(r.status == 0, "\(r.stderr)")
        let entries = (try? JSONSerialization.jsonObject(with: Data(r.stdout.utf8))) as? [[String: Any]] ?? []
        return entries.map { e in ["start", "length", "data", "zero"].map { "\(e[$0] ?? "-")" } }
    }

    @Test func qemuImgMapOverNBDIsTheMapOfTheFile() throws {
        guard let qemuImg = QemuTools.require("qemu-img") else { return }
        let s = try server()
        let file = try map(qemuImg, s.image)
        #expect(file.count == 5)
        #expect(try map(qemuImg, s.uri) == file)
    }

    @Test func qemuImgConvertToQcow2ReadsOnlyTheDataAndGivesASmallIdenticalImage() throws {
        guard let qemuImg = QemuTools.require("qemu-img") else { return }
        let s = try server()
        let out = s.dir.path + "/out.qcow2"
        let convert = try runProcess(qemuImg, ["convert", "-f", "raw", "-O", "qcow2", s.uri, out])
        #expect(convert.status == 0, "\(convert.stderr)")
        let compare = try runProcess(qemuImg, ["compare", "-f", "raw", "-F", "qcow2", s.image, out])
        #expect(compare.status == 0 && compare.stdout == "Images are identical.\n", "\(compare.stdout)\(compare.stderr)")
        // Without block status qemu-img reads all 64 MiB (and drops the zeroes it finds).
        let read = bytesRead(s)
        #expect(read != nil && read! <= 4 * Self.dataBytes, "read \(read ?? 0) bytes")
        let size = (try? FileManager.default.attributesOfItem(atPath: out)[.size] as? Int) ?? Int.max
        #expect(size < 1 << 20)
    }

    @Test func nbdcopyReadsOnlyTheDataAndWritesASparseCopy() throws {
        guard let nbdcopy = QemuTools.require("nbdcopy") else { return }
        let s = try server()
        let out = s.dir.path + "/out.img"
        let r = try runProcess(nbdcopy, [s.uri, out])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(FileManager.default.contents(atPath: out) == FileManager.default.contents(atPath: s.image))
        var st = stat()
        #expect(stat(out, &st) == 0 && Int(st.st_blocks) * 512 < 1 << 20)
        // nbdcopy reads in 256 KiB requests: the data rounded up to those, not 64 MiB.
        let read = bytesRead(s)
        #expect(read != nil && read! <= 1 << 20, "read \(read ?? 0) bytes")
    }
}
