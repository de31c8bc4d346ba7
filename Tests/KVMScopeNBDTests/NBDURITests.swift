import Testing
@testable import KVMScopeNBD

/// NBD URIs as NetworkBlockDevice/nbd doc/uri.md defines them, and what kvmscope refuses.
@Suite struct NBDURITests {
    @Test func parsesTheSpecExamples() throws {
        // uri.md "NBD URI export name" table.
        let cases: [(String, NBDURI.Transport, String)] = [
            ("nbd://example.com/disk", .tcp(host: "example.com", port: 10809), "disk"),
            ("nbd+unix:///disk?socket=sock", .unix(path: "sock"), "disk"),
            ("nbd://example.com/", .tcp(host: "example.com", port: 10809), ""),
            ("nbd://example.com", .tcp(host: "example.com", port: 10809), ""),
            ("nbd://example.com//disk", .tcp(host: "example.com", port: 10809), "/disk"),
            ("nbd://example.com/hello%20world", .tcp(host: "example.com", port: 10809), "hello world"),
            ("nbd://127.0.0.1:10810/x", .tcp(host: "127.0.0.1", port: 10810), "x"),
            ("nbd://[::1]:7000/", .tcp(host: "::1", port: 7000), ""),
            ("nbd://[::1]", .tcp(host: "::1", port: 10809), ""),
            ("NBD+UNIX:///?socket=%2Ftmp%2Fa%20b.sock", .unix(path: "/tmp/a b.sock"), ""),
        ]
        for (text, transport, name) in cases {
            let u = try NBDURI.parse(text)
            #expect(u.transport == transport, "\(text)")
            #expect(u.exportName == name, "\(text)")
        }
    }

    @Test func refusesWhatTheClientDoesNotDoWithOneUsageLine() {
        let refused: [(String, String)] = [
            ("nbd+vsock://1:10809/", "vsock"),
            ("nbds+vsock://1:10809/", "vsock"),
            // tls-* without nbds would be met in the clear; PSK and anonymous TLS are not done.
            ("nbd://example.com/?tls-type=x509", "tls-type is for nbds:// or nbds+unix://"),
            ("nbd+unix:///?socket=s&tls-certificates=/d", "tls-certificates is for nbds://"),
            ("nbds://h/?tls-type=psk", "X.509 only"),
            ("nbds://h/?tls-type=anon", "X.509 only"),
            ("nbds://h/?tls-psk-file=keys.psk", "TLS-PSK"),
            ("nbds://h/?tls-verify-peer=maybe", "0 or 1"),
            ("nbds://h/?tls-certificates=", "needs a directory"),
            ("nbds://h/?tls-frobnicate=1", "unknown query parameter tls-frobnicate"),
            ("nbds+unix:///", "needs ?socket=PATH"),
            ("nbds://alice@h/", "TLS-PSK"),
            ("nbd://example.com/?x-foo=1", "unknown query parameter x-foo"),
            ("nbd+unix:///", "needs ?socket=PATH"),
            ("nbd+unix://host/?socket=s", "takes no host"),
            ("nbd+unix:///?socket=%00abstract", "abstract"),
            ("nbd:///disk", "needs a host"),
            ("nbd://h:0/", "port '0'"),
            ("nbd://h:65536/", "port '65536'"),
            ("nbd://h:99999999999999999999/", "port"),
            ("nbd://user@h/", "user names"),
            ("nbd://h/a%zz", "%-escape"),
            ("nbd://h/a%00b", "NUL"),
            ("nbd://h/?socket=/s", "socket= is for nbd+unix"),
            ("nbd://h/#frag", "fragment"),
            ("http://h/", "not an NBD scheme"),
            ("nbd:h", "not an NBD URI"),
            ("nbd://[::1/", "closing ]"),
            ("nbd+unix:///?socket=" + String(repeating: "a", count: 108), "107 bytes"),
            ("nbd://h/" + String(repeating: "e", count: 4097), "4096 bytes"),
        ]
        for (text, why) in refused {
            do {
                _ = try NBDURI.parse(text)
                Issue.record("\(text) was accepted")
            } catch let e as NBDClientError {
                #expect(e.isUsageError, "\(text)")
                #expect(e.message.contains(why), "\(text): \(e.message)")
                #expect(!e.message.contains("\n"))
            } catch {
                Issue.record("\(text): \(error)")
            }
        }
    }

    @Test func parsesTheTLSForms() throws {
        let a = try NBDURI.parse("nbds://example.com:10810/disk?tls-certificates=/etc/pki/qemu&tls-verify-peer=1")
        #expect(a.transport == .tcp(host: "example.com", port: 10810) && a.exportName == "disk")
        #expect(a.tls == NBDURI.TLS(certificates: "/etc/pki/qemu", verifyPeer: true, hostname: nil))
        let b = try NBDURI.parse("NBDS+UNIX:///x?socket=/run/q.sock&tls-hostname=store1&tls-verify-peer=0&tls-type=x509")
        #expect(b.transport == .unix(path: "/run/q.sock") && b.exportName == "x")
        #expect(b.tls == NBDURI.TLS(certificates: nil, verifyPeer: false, hostname: "store1"))
        #expect(try NBDURI.parse("nbd://example.com/").tls == nil)
    }

    @Test func tellsURIsFromFileNames() {
        #expect(NBDURI.looksLikeURI("nbd://h/"))
        #expect(NBDURI.looksLikeURI("nbd+unix:///?socket=s"))
        #expect(NBDURI.looksLikeURI("nbds://h/"))
        #expect(!NBDURI.looksLikeURI("disk.img"))
        #expect(!NBDURI.looksLikeURI("/tmp/nbd.img"))
    }
}
