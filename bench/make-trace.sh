#!/usr/bin/env bash
# Builds a large QEMU log-backend trace for `kvmscope-bench trace` by repeating the real lab
# captures (lab/scenarios/*/trace.log, QEMU 7.2, -msg timestamp=on) block after block.
# Each block gets its own request pointers (every `req 0x…`/`elem 0x…` shifted by a per-block
# offset; devices, queues and block nodes keep theirs, as in one long-running QEMU) and
# timestamps that keep increasing, so every request still pops, completes and fills
# consistently; werror-stop is left out because its VM never finishes (a stuck request per
# block would be a different benchmark: memory growing with requests in flight).
#
#
# --compose picks which of those real lines make up a block (issue 19 measures both ends):
#   lab         (default) the captures as they are: a mix of analysed and other events;
#   relevant    only the virtio-blk and virtqueue lines (`virtio_blk_*`, `virtqueue_*`): every
#               line is one the request tracker decodes, the reader's worst case;
#   irrelevant  each of those lines followed by nine lines of the captures' events that no
#               analysis reads (`blk_co_preadv`, `scsi_req_continue`, `scsi_disk_emulate_*`,
#               ... from every lab scenario, werror-stop and virtio-scsi included): 90 % of the
#               lines are only counted by name.
#
#   bench/make-trace.sh OUTPUT [MEGABYTES] [--compose lab|relevant|irrelevant]
#                                             (default 1100 MB, i.e. more than 1 GB)
set -euo pipefail
cd "$(dirname "$0")/.."
usage="usage: bench/make-trace.sh OUTPUT [MEGABYTES] [--compose lab|relevant|irrelevant]"
compose=lab
positional=()
while [ $# -gt 0 ]; do
    case $1 in
        --compose) compose=${2:?$usage}; shift 2 ;;
        --compose=*) compose=${1#--compose=}; shift ;;
        *) positional+=("$1"); shift ;;
    esac
done
case $compose in lab|relevant|irrelevant) ;; *) echo "$usage" >&2; exit 2 ;; esac
out=${positional[0]:?$usage}
megabytes=${positional[1]:-1100}
# The pool of lines no analysis reads (irrelevant composition): every lab capture's.
pool=(lab/scenarios/*/trace.log)
# The seed is pinned to the first nine scenarios so that figures stay comparable across
# releases (later scenarios, such as the virtio-scsi one, would change the event mix).
seeds=()
for s in async-write-esrch discard-errors enospc-pause ext4-readonly flush-eio nbd-eio read-once werror-stop write-eio; do
    seeds+=("lab/scenarios/$s/trace.log")
done
python3 - "$out" "$megabytes" "$compose" "${#seeds[@]}" "${seeds[@]}" "${pool[@]}" <<'PY'
import re, sys
out, megabytes, compose, nseeds = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4])
paths, pool_paths = sys.argv[5:5 + nseeds], sys.argv[5 + nseeds:]
paths = [p for p in paths if "/werror-stop/" not in p]
prefix = re.compile(rb"^(\d+)@(\d+)\.(\d{6}):")
name_of = re.compile(rb"^\d+@\d+\.\d{6}:([A-Za-z0-9_]+)")
def relevant(rest):
    return rest.startswith(b"virtio_blk_") or rest.startswith(b"virtqueue_")
# Events some analysis reads (TraceSession.analysedEventNames): never in the irrelevant pool.
analysed = set(b"""virtqueue_pop virtqueue_fill virtio_blk_handle_read virtio_blk_handle_write
    virtio_blk_rw_complete virtio_blk_req_complete virtio_set_status virtio_queue_notify runstate_set
    virtio_scsi_cmd_req virtio_scsi_cmd_resp scsi_req_parsed scsi_req_parsed_lba scsi_req_alloc
    scsi_req_cancel scsi_req_dequeue scsi_req_build_sense scsi_req_parse_bad scsi_disk_check_condition
    scsi_disk_new_request nbd_client_handshake nbd_client_handshake_success nbd_read_reply_entry_fail
    nbd_reconnect_attempt nbd_reconnect_attempt_result nbd_co_request_fail""".split())
pool = []
for path in pool_paths:
    for line in open(path, "rb").read().splitlines():
        m = name_of.match(line)
        if m and m.group(1) not in analysed and not m.group(1).startswith(b"virtio_blk_"):
            pool.append(line[m.start(1):])
filler = 9 if compose == "irrelevant" else 0
pointer = re.compile(rb"(?<=req |lem )0x[0-9a-f]+")
# Template: for each line, (tid, micros since the block start, [literal, pointer, literal, ...]).
template, t0 = [], None
offset = 0
for path in paths:
    lines = open(path, "rb").read().splitlines()
    first = None
    for line in lines:
        m = prefix.match(line)
        if not m:
            continue
        micros = int(m.group(2)) * 1_000_000 + int(m.group(3))
        first = micros if first is None else first
        rest = line[m.end():]
        if compose != "lab" and not relevant(rest):
            continue
        parts, last = [], 0
        for p in pointer.finditer(rest):
            parts.append(rest[last:p.start()])
            parts.append(int(p.group(0), 16))
            last = p.end()
        parts.append(rest[last:])
        template.append((m.group(1), offset + micros - first, parts))
    offset = template[-1][1] + 1000          # next scenario 1 ms after this one
block_micros = offset
target = megabytes * 1_000_000
written = lines_out = block = filled = 0
start = 1_795_000_000 * 1_000_000
with open(out, "wb", buffering=1 << 22) as f:
    while written < target:
        shift = block * 0x100000
        base = start + block * block_micros
        chunk = []
        for tid, micros, parts in template:
            t = base + micros
            pieces = [b"%s@%d.%06d:" % (tid, t // 1_000_000, t % 1_000_000)]
            for i, p in enumerate(parts):
                pieces.append(p if i % 2 == 0 else b"0x%x" % (p + shift))
            pieces.append(b"\n")
            chunk.append(b"".join(pieces))
            # Filler lines: same thread and time as the event before them (time never goes back).
            for _ in range(filler):
                chunk.append(pieces[0] + pool[filled % len(pool)] + b"\n")
                filled += 1
        data = b"".join(chunk)
        f.write(data)
        written += len(data)
        lines_out += len(chunk)
        block += 1
print(f"{out}: {written} bytes, {lines_out} lines, {block} blocks of {len(template)} real lab lines"
      + (f" each followed by {filler} of {len(pool)} lines no analysis reads" if filler else "")
      + f" ({compose})")
PY
