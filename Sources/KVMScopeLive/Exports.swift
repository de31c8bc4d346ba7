// Live VM access is used over the core; its clients get the core with it.
@_exported import KVMScopeCore
