// The host domain is read over the core and the guest log's kernel-line parsing; its clients
// get both with it.
@_exported import KVMScopeCore
@_exported import KVMScopeGuestLog
