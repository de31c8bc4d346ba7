import Testing
@testable import KVMScope

@Suite struct BlkdebugConfigReaderTests {
    let reader = BlkdebugConfigReader()

    func codes(_ r: BlkdebugConfigReader.Result) -> [String] { r.diagnostics.map(\.code) }

    @Test func readsTheLabWriteEIORulesExactly() throws {
        let text = """
        # write-eio: every write that covers sector 2048 (byte offset 1 MiB) fails with EIO.
        [inject-error]
        event = "none"
        iotype = "write"
        sector = "2048"
        errno = "5"

        [set-state]
        event = "write_aio"
        state = "1"
        new_state = "2"
        """
        let r = reader.parse(text, file: "rules.cfg")
        #expect(r.diagnostics.isEmpty)
        #expect(r.config.injectErrors.count == 1)
        let rule = r.config.injectErrors[0]
        #expect(rule.event == .none && rule.iotypeMask == BlkdebugIOType.write.bit && rule.sector == 2048 && rule.errno == 5)
        #expect(rule.byteOffset == 1_048_576 && rule.state == 0 && !rule.once && rule.location == RuleLocation(file: "rules.cfg", line: 2))
        #expect(r.config.setStates == [SetStateRule(event: .writeAIO, state: 1, newState: 2, location: RuleLocation(file: "rules.cfg", line: 8))])
    }

    @Test func defaultsAreQEMUs() {
        let r = reader.parse("[inject-error]\nevent = \"read_aio\"\n")
        let rule = r.config.injectErrors[0]
        #expect(rule.errno == 5 && rule.sector == nil && rule.state == 0 && !rule.once && !rule.immediately)
        #expect(rule.iotypeMask == BlkdebugIOType.defaultMask)
        #expect(BlkdebugIOType.names(in: rule.iotypeMask) == ["read", "write", "write-zeroes", "discard", "flush"])
    }

    @Test func numbersAreParsedLikeQemuStrtou64() {
        let r = reader.parse("[inject-error]\nevent = \"none\"\nsector = \"0x800\"\nerrno = \"034\"\nonce = \"yes\"\nimmediately = \"off\"\n")
        #expect(r.diagnostics.isEmpty)
        #expect(r.config.injectErrors[0].sector == 2048 && r.config.injectErrors[0].errno == 28 && r.config.injectErrors[0].once)
    }

    @Test func oldDottedEventNameIsRejectedWithTheNewName() {
        let r = reader.parse("[inject-error]\nevent = \"l1_grow.alloc_table\"\n", file: "old.cfg")
        let d = r.diagnostics.first { $0.code == "legacy-event-name" }
        #expect(d?.severity == .error && d?.location == RuleLocation(file: "old.cfg", line: 2))
        #expect(d?.hint == "use event = \"l1_grow_alloc_table\"")
        #expect(r.config.injectErrors.isEmpty)
    }

    @Test func misspelledEventGetsASuggestion() {
        let r = reader.parse("[inject-error]\nevent = \"read-aio\"\n")
        #expect(r.diagnostics.first?.code == "unknown-event")
        #expect(r.diagnostics.first?.hint == "did you mean \"read_aio\"?")
    }

    @Test func qemuLineQuirksAreErrors() {
        // QEMU only skips lines that are exactly empty; a blank line with spaces is a parse error.
        let blanks = reader.parse("[inject-error]\n   \nevent = \"none\"\n")
        #expect(codes(blanks) == ["parse-error"] && blanks.diagnostics[0].location?.line == 2)
        #expect(blanks.diagnostics[0].hint?.contains("completely empty") == true)
        // Spaces are needed before '=': %63s swallows `event="none"` whole.
        let noSpace = reader.parse("[inject-error]\nevent=\"none\"\n")
        #expect(codes(noSpace).contains("parse-error"))
        #expect(noSpace.diagnostics[0].hint?.contains("blank before '='") == true)
        #expect(noSpace.config.injectErrors.isEmpty)           // and then the section has no event
        #expect(codes(noSpace).contains("missing-event"))
        // `event ="none"` is fine (blank before '=', none after).
        #expect(reader.parse("[inject-error]\nevent =\"none\"\n").diagnostics.isEmpty)
        // Unquoted value.
        let unquoted = reader.parse("[inject-error]\nevent = none\n")
        #expect(unquoted.diagnostics[0].hint == "the value must be in double quotes: event = \"none\"")
        // Indented comment.
        #expect(reader.parse("[inject-error]\n  # note\nevent = \"none\"\n").diagnostics.first?.hint == "comments must start in the first column")
        // Text after the closing quote is ignored, as by sscanf.
        #expect(reader.parse("[inject-error]\nevent = \"none\"   # armed at open\n").diagnostics.isEmpty)
        // Windows line endings: the empty "\r" line is a parse error.
        let crlf = reader.parse("[inject-error]\r\nevent = \"none\"\r\n\r\n[set-state]\r\nevent = \"none\"\r\nnew_state = \"2\"\r\n")
        #expect(codes(crlf) == ["parse-error"] && crlf.diagnostics[0].hint?.contains("CRLF") == true)
    }

    @Test func sectionsAndKeysQEMURejects() {
        let r = reader.parse("""
        errno = "5"
        [take-snapshot]
        event = "none"
        [inject-error]
        event = "none"
        probabilty = "0.5"
        errno = "EIO"
        once = "maybe"
        iotype = "write_zeroes"
        [set-state]
        event = "none"
        new-state = "2"
        [inject-error]
        state = "2"
        """, file: "bad.cfg")
        let byLine = Dictionary(grouping: r.diagnostics, by: { $0.location?.line ?? 0 }).mapValues { $0.map(\.code) }
        #expect(byLine[1] == ["no-group"])
        #expect(byLine[2] == ["unknown-section"])
        #expect(byLine[6] == ["unknown-key"])
        #expect(r.diagnostics.first { $0.location?.line == 6 }?.hint == "did you mean 'probability'?")
        #expect(byLine[7] == ["not-a-number"])
        #expect(r.diagnostics.first { $0.location?.line == 7 }?.hint == "QEMU wants the number: errno = \"5\"")
        #expect(byLine[8] == ["not-a-bool"])
        #expect(byLine[9] == ["unknown-iotype"])
        #expect(byLine[12] == ["unknown-key"])
        #expect(r.diagnostics.first { $0.location?.line == 12 }?.hint == "the key is 'new_state' (underscore)")
        #expect(byLine[13] == ["missing-event"])
        #expect(r.config.isEmpty)
        #expect(r.hasErrors)
    }

    @Test func repeatedKeyWarnsThatTheLastWins() {
        let r = reader.parse("[inject-error]\nevent = \"none\"\nerrno = \"5\"\nerrno = \"28\"\n")
        #expect(codes(r) == ["duplicate-key"] && r.diagnostics[0].severity == .warning)
        #expect(r.config.injectErrors[0].errno == 28)
    }

    @Test func sectionIDsAndDuplicates() {
        let r = reader.parse("[inject-error \"a\"]\nevent = \"none\"\n[inject-error \"a\"]\nevent = \"read_aio\"\n")
        #expect(r.config.injectErrors.count == 1 && r.config.injectErrors[0].id == "a")
        #expect(codes(r) == ["duplicate-id"])
    }

    @Test func kvmscopeExtensionsAreParsedAndMarked() {
        let r = reader.parse("""
        [inject-error]
        event = "none"
        errno = "0"
        probability = "10%"
        delay = "20ms"
        after = "3"
        up = "30"
        down = "1.5s"
        """)
        #expect(!r.hasErrors)
        let ext = r.config.injectErrors[0].extensions
        #expect(ext.probability == 0.1 && ext.delayNanoseconds == 20_000_000 && ext.after == 3)
        #expect(ext.upSeconds == 30 && ext.downSeconds == 1.5)
        #expect(r.diagnostics.filter { $0.code == "kvmscope-key" }.count == 5)
        #expect(r.diagnostics.allSatisfy { $0.severity == .note })

        let bad = reader.parse("[inject-error]\nevent = \"none\"\nprobability = \"1.5\"\ndelay = \"soon\"\nup = \"10\"\n")
        #expect(bad.diagnostics.filter { $0.code == "bad-extension-value" }.count == 3)
        #expect(bad.config.injectErrors.isEmpty)
    }

    /// QEMU accepts negative numbers and numbers beyond an int (they wrap; see
    /// BlkdebugNumberSemanticsTests) and refuses only what does not fit 64 bits.
    @Test func negativeAndHugeNumbers() {
        #expect(reader.parse("[inject-error]\nevent = \"none\"\nerrno = \"-5\"\n").diagnostics.isEmpty)
        #expect(reader.parse("[inject-error]\nevent = \"none\"\nsector = \"99999999999999999999\"\n").diagnostics.first?.code == "number-too-large")
        let wrapped = reader.parse("[inject-error]\nevent = \"none\"\nerrno = \"4294967296\"\n")
        #expect(wrapped.diagnostics.map(\.code) == ["number-wraps"] && wrapped.config.injectErrors.first?.errno == 0)
    }

    @Test func binaryAndLongLinesAreRefusedNotCrashed() {
        let binary = reader.parse([0x5b, 0x00, 0xff, 0x0a], file: "junk")
        #expect(binary.diagnostics.map(\.code) == ["binary-file"])
        let long = reader.parse("[inject-error]\nevent = \"none\"\n# " + String(repeating: "x", count: 2000) + "\n")
        #expect(long.diagnostics.map(\.code) == ["line-too-long"] && long.diagnostics[0].location?.line == 3)
    }

    @Test func missingFileIsOneClearError() {
        #expect(throws: KVMScopeError.self) { try reader.read(path: "/nonexistent/rules.cfg") }
    }
}
