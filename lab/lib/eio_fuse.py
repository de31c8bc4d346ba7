#!/usr/bin/python3
"""A FUSE filesystem with one file, `backing`, that fails a byte range with EIO.

lab/lib/eio_fuse.py BACKING_FILE SIZE MOUNTPOINT LOG

`MOUNTPOINT/backing` is BACKING_FILE (a real, sparse file on the host) of SIZE bytes; every
read and write goes to it with pread/pwrite, except those that overlap the byte range set
through `MOUNTPOINT/control`, which get EIO, as a failing disk would give its block layer.
Writing `eio START LENGTH` to `control` sets that range (`eio 0 0` clears it); reading
`control` returns the current range. Each failed request is logged to LOG with the wall-clock
time (the clock of QEMU's trace and the QMP timestamps), so a capture says exactly which bytes
the "disk" refused.

The lab puts a loop device (losetup --direct-io=on) on `backing` and a host ext4 on the loop
device: a failed request here is a failed bio on loopN, which the host kernel logs as
`I/O error, dev loopN, sector S op ...` (block/blk-core.c). It runs in the foreground,
single-threaded (nothreads), until it is unmounted or killed (lib/host.sh stops it).

Debian's python3-fusepy installs the module as `fusepy` (upstream calls it `fuse`).
"""
import errno
import os
import stat
import sys
import threading
import time

try:
    import fusepy as fuse
except ImportError:  # upstream's name
    import fuse

BACKING = "/backing"
CONTROL = "/control"


class EIOFile(fuse.Operations):
    def __init__(self, path, size, log):
        self.fd = os.open(path, os.O_RDWR)
        os.ftruncate(self.fd, size)
        self.size = size
        self.log = open(log, "a", buffering=1)
        self.lock = threading.Lock()
        self.eio = (0, 0)
        self.control_text = b""
        self.started = time.time()

    def note(self, text):
        self.log.write("%.6f %s\n" % (time.time(), text))

    def getattr(self, path, fh=None):
        now = self.started
        if path == "/":
            return dict(st_mode=stat.S_IFDIR | 0o755, st_nlink=2, st_atime=now, st_mtime=now, st_ctime=now)
        if path == BACKING:
            return dict(st_mode=stat.S_IFREG | 0o600, st_nlink=1, st_size=self.size,
                        st_blocks=(self.size + 511) // 512, st_atime=now, st_mtime=now, st_ctime=now)
        if path == CONTROL:
            return dict(st_mode=stat.S_IFREG | 0o600, st_nlink=1, st_size=len(self.state()),
                        st_atime=now, st_mtime=now, st_ctime=now)
        raise fuse.FuseOSError(errno.ENOENT)

    def readdir(self, path, fh):
        if path != "/":
            raise fuse.FuseOSError(errno.ENOTDIR)
        return [".", "..", BACKING[1:], CONTROL[1:]]

    def open(self, path, flags):
        if path not in (BACKING, CONTROL):
            raise fuse.FuseOSError(errno.ENOENT)
        return 0

    def truncate(self, path, length, fh=None):
        if path == CONTROL:
            return 0
        if path != BACKING or length != self.size:
            raise fuse.FuseOSError(errno.EPERM)  # the "disk" has a fixed size
        return 0

    def state(self):
        return b"eio %d %d\n" % self.eio

    def hits(self, offset, length):
        start, count = self.eio
        return count > 0 and offset < start + count and start < offset + length

    def read(self, path, size, offset, fh):
        if path == CONTROL:
            return self.state()[offset:offset + size]
        with self.lock:
            if self.hits(offset, size):
                self.note("EIO read offset %d length %d" % (offset, size))
                raise fuse.FuseOSError(errno.EIO)
            return os.pread(self.fd, size, offset)

    def write(self, path, data, offset, fh):
        if path == CONTROL:
            words = data.decode("ascii", "replace").split()
            if len(words) != 3 or words[0] != "eio" or not words[1].isdigit() or not words[2].isdigit():
                raise fuse.FuseOSError(errno.EINVAL)
            with self.lock:
                self.eio = (int(words[1]), int(words[2]))
                self.note("control: EIO for bytes %d..%d (length %d)" % (
                    self.eio[0], self.eio[0] + self.eio[1] - 1, self.eio[1]))
            return len(data)
        with self.lock:
            if offset + len(data) > self.size:
                raise fuse.FuseOSError(errno.ENOSPC)
            if self.hits(offset, len(data)):
                self.note("EIO write offset %d length %d" % (offset, len(data)))
                raise fuse.FuseOSError(errno.EIO)
            return os.pwrite(self.fd, data, offset)

    def fsync(self, path, datasync, fh):
        if path == BACKING:
            os.fsync(self.fd)
        return 0

    def flush(self, path, fh):
        return 0

    def statfs(self, path):
        return dict(f_bsize=4096, f_frsize=4096, f_blocks=self.size // 4096, f_bfree=0, f_bavail=0)


def main():
    if len(sys.argv) != 5:
        sys.exit("usage: eio_fuse.py BACKING_FILE SIZE MOUNTPOINT LOG")
    path, size, mountpoint, log = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
    ops = EIOFile(path, size, log)
    ops.note("serving %s (%d bytes) at %s%s" % (path, size, mountpoint, BACKING))
    fuse.FUSE(ops, mountpoint, foreground=True, nothreads=True, fsname="kvmscope-lab-eio")


if __name__ == "__main__":
    main()
