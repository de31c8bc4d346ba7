// Every domain is written over the core (byte streams, lines, errno, output helpers); its
// clients get the core with it, as NIOPosix re-exports NIOCore.
@_exported import KVMScopeCore
