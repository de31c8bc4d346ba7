import Foundation
import Testing
import KVMScopeLive
@testable import KVMScopeLibvirt

@Suite struct PassthroughJSONTests {
    @Test func theCommandCarriesNoIDOfItsOwn() throws {
        let text = try PassthroughJSON.command("trace-event-set-state", arguments: ["name": "virtio_blk_rw_complete", "enable": true])
        let obj = try #require(try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any])
        #expect(obj["execute"] as? String == "trace-event-set-state")
        #expect(obj["id"] == nil)
        #expect((obj["arguments"] as? [String: Any])?["name"] as? String == "virtio_blk_rw_complete")
        #expect(try PassthroughJSON.command("query-status", arguments: nil) == #"{"execute":"query-status"}"#)
    }

    @Test func repliesDecodeAsQMPRepliesDo() throws {
        let r = try PassthroughJSON.reply(#"{"return":{"status":"running","running":true},"id":"libvirt-12"}"#, command: "query-status", qemuVersion: "7.2.22")
        #expect((r as? [String: Any])?["status"] as? String == "running")
        #expect(throws: QMPError.commandNotFound(command: "x-nope", qemuVersion: "7.2.22")) {
            _ = try PassthroughJSON.reply(#"{"id":"libvirt-3","error":{"class":"CommandNotFound","desc":"The command x-nope has not been found"}}"#,
                                          command: "x-nope", qemuVersion: "7.2.22")
        }
        #expect(throws: QMPError.commandFailed(command: "trace-event-set-state", errorClass: "GenericError", desc: "No such trace event 'zz'")) {
            _ = try PassthroughJSON.reply(#"{"error":{"class":"GenericError","desc":"No such trace event 'zz'"}}"#,
                                          command: "trace-event-set-state", qemuVersion: "7.2.22")
        }
        for bad in ["", "[1]", "not json", #"{"id":"libvirt-1"}"#] {
            #expect(throws: QMPError.self, "\(bad)") { _ = try PassthroughJSON.reply(bad, command: "q", qemuVersion: "") }
        }
    }

    @Test func anEventIsPutBackIntoQEMUsLineForm() throws {
        let details = ##"{"device":"drive0","node-name":"#block236","reason":"Input/output error","operation":"write","action":"report"}"##
        let m = try #require(PassthroughJSON.event(name: "BLOCK_IO_ERROR", seconds: 1796144439, microseconds: 610389, details: details))
        let line = String(decoding: m.line, as: UTF8.self)
        #expect(line == #"{"timestamp": {"seconds": 1796144439, "microseconds": 610389}, "event": "BLOCK_IO_ERROR", "data": "# + details + "}")
        // The line is one JSON object whose members are what `object` holds.
        let reparsed = try #require(try JSONSerialization.jsonObject(with: Data(m.line)) as? [String: Any])
        #expect(reparsed["event"] as? String == "BLOCK_IO_ERROR")
        #expect((reparsed["timestamp"] as? [String: Any])?["microseconds"] as? Int == 610389)
        #expect(m.eventName == "BLOCK_IO_ERROR")
        #expect(m.data["device"] as? String == "drive0")
        #expect(!line.contains("\n"))
    }

    @Test func anEventWithoutDataHasNoDataMember() throws {
        let m = try #require(PassthroughJSON.event(name: "STOP", seconds: 5, microseconds: 7, details: nil))
        #expect(String(decoding: m.line, as: UTF8.self) == #"{"timestamp": {"seconds": 5, "microseconds": 7}, "event": "STOP"}"#)
        #expect(m.object["data"] == nil)
    }

    @Test func whatIsNotAnEventIsDropped() throws {
        #expect(PassthroughJSON.event(name: "", seconds: 1, microseconds: 0, details: nil) == nil)
        #expect(PassthroughJSON.event(name: "X", seconds: 1, microseconds: 0, details: "[1,2]") == nil)
        #expect(PassthroughJSON.event(name: "X", seconds: 1, microseconds: 0, details: "{\"a\":") == nil)
        #expect(PassthroughJSON.event(name: String(repeating: "E", count: 300), seconds: 1, microseconds: 0, details: nil) == nil)
        // A name needing JSON escapes stays one valid JSON line.
        let m = try #require(PassthroughJSON.event(name: "A\"B\n", seconds: 1, microseconds: 0, details: nil))
        let obj = try #require(try JSONSerialization.jsonObject(with: Data(m.line)) as? [String: Any])
        #expect(obj["event"] as? String == "A\"B\n")
    }

    @Test func theVersionStringIsTheGreetingsForm() {
        let v: [String: Any] = ["qemu": ["major": 7, "minor": 2, "micro": 22], "package": "Debian 1:7.2+dfsg-7+deb12u18+b3"]
        #expect(PassthroughJSON.version(fromQueryVersion: v) == "7.2.22 (Debian 1:7.2+dfsg-7+deb12u18+b3)")
        #expect(PassthroughJSON.version(fromQueryVersion: ["qemu": ["major": 9, "minor": 0, "micro": 0], "package": ""]) == "9.0.0")
        #expect(PassthroughJSON.version(fromQueryVersion: "7.2") == nil)
    }
}
