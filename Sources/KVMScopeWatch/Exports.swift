// `kvmscope watch`: every VM on a host as Prometheus metrics (swift-prometheus) and a JSON
// Lines event log. Discovery/ finds QMP monitors, Poll/ watches each on its own thread,
// Metrics/ keeps the series, HTTP/ serves /metrics, Renderers/ writes the event log,
// Capture/ records a VM on its first I/O error (--auto-record).
@_exported import KVMScopeLive
