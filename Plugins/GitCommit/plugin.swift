import Foundation
import PackagePlugin

/// Writes the git commit the package is built from into KVMScopeCore (as
/// `KVMScopeVersion.gitCommit`), so `kvmscope --version` names the commit without any tracked
/// file being edited at build time.
///
/// A prebuild command, not a build command: prebuild commands run before every build, so the
/// commit is read afresh each time (a build command would only rerun when its declared inputs
/// change, and .git's HEAD is not one of the target's inputs). The script rewrites the generated
/// file only when its content changes, so an unchanged commit costs no recompilation.
/// Outside a git checkout (a source tarball) or without git, the commit is nil and
/// `--version` says "commit unknown".
@main
struct GitCommit: BuildToolPlugin {
    func createBuildCommands(context: PluginContext, target: Target) throws -> [Command] {
        let output = context.pluginWorkDirectoryURL.appending(path: "generated")
        let script = """
            set -u
            pkg=$1; out=$2; work=$3
            mkdir -p "$out"
            c=$(git -C "$pkg" rev-parse --short=12 HEAD 2>/dev/null) || c=
            case "$c" in
                ''|*[!0-9a-f]*) value=nil ;;
                *)  # Tracked files changed since the commit: the binary is not that commit's code.
                    if [ -n "$(git -C "$pkg" status --porcelain --untracked-files=no 2>/dev/null)" ]; then
                        c="$c-dirty"
                    fi
                    value="\\"$c\\"" ;;
            esac
            printf '%s\\n' '// Generated at build time by Plugins/GitCommit; not tracked.' \
                "extension KVMScopeVersion { static let gitCommit: String? = $value }" > "$work/GitCommit.swift.new"
            cmp -s "$work/GitCommit.swift.new" "$out/GitCommit.swift" || mv "$work/GitCommit.swift.new" "$out/GitCommit.swift"
            """
        return [.prebuildCommand(
            displayName: "Reading the git commit for kvmscope --version",
            executable: URL(fileURLWithPath: "/bin/sh"),
            arguments: ["-c", script, "sh", context.package.directoryURL.path(), output.path(),
                        context.pluginWorkDirectoryURL.path()],
            outputFilesDirectory: output)]
    }
}
