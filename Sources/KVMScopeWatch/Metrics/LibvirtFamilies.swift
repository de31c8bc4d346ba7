/// watch's own series about its libvirt connections (`--libvirt URI`), one set per URI.
extension WatchMetricFamilies {
    public static let libvirtUp = WatchMetricFamily(
        name: "kvmscope_watch_libvirt_up",
        help: "1 while watch is connected to libvirt at this URI",
        labels: ["uri"])
    public static let libvirtQMPEvents = WatchMetricFamily(
        name: "kvmscope_watch_libvirt_qmp_events",
        help: "1 when watch receives the QMP events (BLOCK_IO_ERROR, STOP...) of this libvirt's domains; 0 on a read-only connection (state and counters only)",
        labels: ["uri"])
    public static let libvirtErrors = WatchMetricFamily(
        name: "kvmscope_watch_libvirt_errors_total",
        help: "Failures talking to libvirt, by kind (connect, closed, xml, passthrough, events-dropped, other)",
        labels: ["uri", "kind"])
    public static let libvirtReconnects = WatchMetricFamily(
        name: "kvmscope_watch_libvirt_reconnects_total",
        help: "Times the connection to libvirt was lost and made again (libvirtd restarted)",
        labels: ["uri"])

    public static let libvirt: [WatchMetricFamily] = [libvirtUp, libvirtQMPEvents, libvirtErrors, libvirtReconnects]
}
