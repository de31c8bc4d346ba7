import Foundation
import Testing
import KVMScopeTestSupport
@testable import KVMScopeTrace

/// The byte-level trace-events parser (issue 19: it was 0.1 s of every `trace` start-up)
/// against the Character-level one it replaced (ReferenceTraceEventsFileParser): the same
/// entries, bad lines and argument classification on real definition files and on lines
/// built to hit each rule.
@Suite struct TraceEventsFileParserReferenceTests {
    static func same(_ text: String, sourceLocation: SourceLocation = #_sourceLocation) {
        let new = TraceEventsFileParser(text: text)
        let old = ReferenceTraceEventsFileParser(text: text)
        #expect(new.entries == old.entries, sourceLocation: sourceLocation)
        #expect(new.badLines == old.badLines, sourceLocation: sourceLocation)
        for (a, b) in zip(new.entries, old.entries) {
            for (x, y) in zip(a.arguments, b.arguments) {
                let (kind, width) = ReferenceTraceArgumentKind.classify(y.type)
                #expect(x.kind == kind && x.bitWidth == width, "\(a.name): \(x.type)", sourceLocation: sourceLocation)
            }
        }
    }

    static var definitionFiles: [String] {
        let fixtures = TraceTestData.repoRoot.appendingPathComponent("Tests/Fixtures/trace")
        return [fixtures.appendingPathComponent("lab.trace-events").path,
                fixtures.appendingPathComponent("simpletrace-v4.trace-events").path]
            + TraceEventCatalog.installedPaths.filter { FileManager.default.isReadableFile(atPath: $0) }
    }

    @Test func bundledDefinitions() { Self.same(BundledTraceEvents.text) }

    @Test(arguments: definitionFiles) func definitionFile(path: String) throws {
        Self.same(String(decoding: try Data(contentsOf: URL(fileURLWithPath: path)), as: UTF8.self))
    }

    /// Each rule of the grammar, good and bad, and blanks where they may be.
    @Test func everyRule() {
        Self.same("""
        # comment
          # indented comment
        \tdisable  vcpu\tfoo_bar(void) "x %d"
        a(int x) "%d"
        b(int x)"%d"
        c (int x) "%d"
        d(int x) no quote
        e(int x,) "%d"
        f(, int x) "%d"
        g() "x"
        h(int) "x"
        i(const char * s, const char*t, char *u, char* v, char **w, void *p) "%s"
        j(unsigned long long int a, const volatile int b, signed short c, _Bool d, ssize_t e) ""
        k(uint64_t a, int b, int c, int d, int e, int f, int g, int h, int i, int j, int k) "too many"
        l(int 9x) "bad name"
        9m(int x) "bad event name"
        n-o(int x) "bad event name"
        p(int x "no close"
        q int x) "no open"
        bad-prop r(int x) "bad property"
        s( int   x  ,  void * y ) \t "spaces"  \r \t
        t(struct Foo *f, const char * const *names) "%p"
        u(void) ""
        v(int x) "a" "b" PRIx64 "c"
        w(uint32_t unsigned_thing) "%u"

        """)
    }

    /// The one difference, on purpose: a `\r\n` line end ends the line (the Character-level
    /// parser saw `\r\n` as one Character, not `\n`, and glued such a file into one line).
    @Test func crlfLineEnds() {
        let p = TraceEventsFileParser(text: "a(int x) \"%d\"\r\nb(void *p) \"%p\"\r\n")
        #expect(p.entries.map(\.name) == ["a", "b"] && p.entries.map(\.line) == [1, 2])
        #expect(p.entries.map(\.rawFormat) == ["\"%d\"", "\"%p\""] && p.badLines.isEmpty)
    }
}
