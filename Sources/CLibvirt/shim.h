// The system libvirt client library (Debian: libvirt-dev), for `record --domain`: the public
// API and the QEMU-specific one (QMP passthrough, QMP event callbacks). kvmscope talks to the
// libvirt daemon through these calls only, never through the daemon's monitor socket.
#include <libvirt/libvirt.h>
#include <libvirt/libvirt-qemu.h>
#include <libvirt/virterror.h>
