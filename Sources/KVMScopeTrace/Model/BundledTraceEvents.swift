/// The trace-events lines kvmscope needs even when no QEMU is installed: every event the
/// virtio-blk request analysis reads, in each signature QEMU has used. Copied from QEMU's own
/// definition files (a definition is data, not code):
/// - today's hw/block/trace-events and hw/virtio/trace-events (QEMU 2.10 … 10.x; identical in
///   Debian 12's QEMU 7.2 /usr/share/qemu/trace-events-all), system/trace-events for runstate_set;
/// - QEMU 2.x hw/block/trace-events, before `vdev` was added: handle_read exists, no vdev;
/// - the qemu-kvm 0.12 trace-events of RHEL 6: no vdev, no handle_read, events `disable`d,
///   old runstate_set/vm_state_notify without the state names.
/// Lines with the same name are alternatives: readers try them in order (text) or pick the
/// one whose size matches the record (simpletrace).
enum BundledTraceEvents {
    public static let origin = "bundled"

    public static let text = #"""
# hw/block/trace-events (QEMU 2.10 and later)
virtio_blk_req_complete(void *vdev, void *req, int status) "vdev %p req %p status %d"
virtio_blk_rw_complete(void *vdev, void *req, int ret) "vdev %p req %p ret %d"
virtio_blk_handle_write(void *vdev, void *req, uint64_t sector, size_t nsectors) "vdev %p req %p sector %"PRIu64" nsectors %zu"
virtio_blk_handle_read(void *vdev, void *req, uint64_t sector, size_t nsectors) "vdev %p req %p sector %"PRIu64" nsectors %zu"
virtio_blk_submit_multireq(void *vdev, void *mrb, int start, int num_reqs, uint64_t offset, size_t size, bool is_write) "vdev %p mrb %p start %d num_reqs %d offset %"PRIu64" size %zu is_write %d"

# hw/block/dataplane/trace-events
virtio_blk_data_plane_start(void *s) "dataplane %p"
virtio_blk_data_plane_stop(void *s) "dataplane %p"

# hw/virtio/trace-events
virtqueue_alloc_element(void *elem, size_t sz, unsigned in_num, unsigned out_num) "elem %p size %zd in_num %u out_num %u"
virtqueue_fill(void *vq, const void *elem, unsigned int len, unsigned int idx) "vq %p elem %p len %u idx %u"
virtqueue_flush(void *vq, unsigned int count) "vq %p count %u"
virtqueue_pop(void *vq, void *elem, unsigned int in_num, unsigned int out_num) "vq %p elem %p in_num %u out_num %u"
virtio_queue_notify(void *vdev, int n, void *vq) "vdev %p n %d vq %p"
virtio_notify(void *vdev, void *vq) "vdev %p vq %p"
virtio_set_status(void *vdev, uint8_t val) "vdev %p val %u"

# system/trace-events (softmmu/trace-events in QEMU 7.2)
vm_state_notify(int running, int reason, const char *reason_str) "running %d reason %d (%s)"
runstate_set(int current_state, const char *current_state_str, int new_state, const char *new_state_str) "current_run_state %d (%s) new_state %d (%s)"

# QEMU 2.x hw/block/trace-events: no vdev argument yet
virtio_blk_req_complete(void *req, int status) "req %p status %d"
virtio_blk_rw_complete(void *req, int ret) "req %p ret %d"
virtio_blk_handle_write(void *req, uint64_t sector, size_t nsectors) "req %p sector %"PRIu64" nsectors %zu"
virtio_blk_handle_read(void *req, uint64_t sector, size_t nsectors) "req %p sector %"PRIu64" nsectors %zu"
virtio_blk_submit_multireq(void *mrb, int start, int num_reqs, uint64_t offset, size_t size, bool is_write) "mrb %p start %d num_reqs %d offset %"PRIu64" size %zu is_write %d"

# qemu-kvm 0.12 (RHEL 6) trace-events: no vdev, no handle_read; VirtIOBlockReq starts with
# a device pointer, so there `elem` = `req` + 8
disable virtio_blk_req_complete(void *req, int status) "req %p status %d"
disable virtio_blk_rw_complete(void *req, int ret) "req %p ret %d"
disable virtio_blk_handle_write(void *req, uint64_t sector, size_t nsectors) "req %p sector %"PRIu64" nsectors %zu"
disable virtqueue_fill(void *vq, const void *elem, unsigned int len, unsigned int idx) "vq %p elem %p len %u idx %u"
disable virtqueue_flush(void *vq, unsigned int count) "vq %p count %u"
disable virtqueue_pop(void *vq, void *elem, unsigned int in_num, unsigned int out_num) "vq %p elem %p in_num %u out_num %u"
disable virtio_queue_notify(void *vdev, int n, void *vq) "vdev %p n %d vq %p"
disable virtio_notify(void *vdev, void *vq) "vdev %p vq %p"
disable vm_state_notify(int running, int reason) "running %d reason %d"
disable runstate_set(int new_state) "new state %d"

"""#
}
