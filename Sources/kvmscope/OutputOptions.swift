import ArgumentParser
import KVMScope

extension TerminalStyle.Choice: ExpressibleByArgument {}

/// Options every report command shares.
struct OutputOptions: ParsableArguments {
    @Flag(name: .long, help: "Print the report as JSON (stable keys, documented in the README).")
    var json = false

    @Option(name: .long, help: "Colour the text report: auto (terminal and no NO_COLOR), always, never.")
    var color: TerminalStyle.Choice = .auto

    var style: TerminalStyle { TerminalStyle.detect(choice: color) }
}
