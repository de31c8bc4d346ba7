#!/usr/bin/env bash
# bench/compressed-input.sh KVMSCOPE_BENCH KVMSCOPE FILE [ROUNDS]
#
# Decompression cost of reading a compressed input in-process (FileByteSource + the system
# zlib/liblzma/libzstd) against the shell's way (`zcat FILE.gz | kvmscope guest -`, a second
# process and a pipe). FILE is a plain guest log (bench/make-guest-log.sh OUT 256); its gzip,
# xz and zstd copies are made next to it once. Prints wall seconds (best of ROUNDS) and the
# decompress benchmark's MB/s line per format.
set -euo pipefail
bench=${1:?usage: bench/compressed-input.sh KVMSCOPE_BENCH KVMSCOPE FILE [ROUNDS]}
kvmscope=${2:?usage}
file=${3:?usage}
rounds=${4:-3}
[[ -f $file.gz ]] || gzip -c -6 "$file" > "$file.gz"
[[ -f $file.xz ]] || xz -c -T1 -6 "$file" > "$file.xz"
[[ -f $file.zst ]] || zstd -q -c -3 "$file" > "$file.zst"

best() {   # best wall time of ROUNDS runs of "$@" (a shell command string)
    local b=
    for _ in $(seq 1 "$rounds"); do
        local s e
        s=$(date +%s.%N); bash -c "$1" > /dev/null || true; e=$(date +%s.%N)
        b=$(echo "$s $e ${b:-}" | awk '{t=$2-$1; if ($3=="" || t<$3) print t; else print $3}')
    done
    echo "$b"
}

for f in "$file" "$file.gz" "$file.xz" "$file.zst"; do
    "$bench" decompress "$f" | sed 's/^/  /'
done
for z in "gz:zcat" "xz:xzcat" "zst:zstdcat"; do
    ext=${z%%:*}; cat=${z#*:}
    inproc=$(best "$kvmscope guest '$file.$ext'")
    piped=$(best "$cat '$file.$ext' | $kvmscope guest -")
    echo "guest $ext: in-process $inproc s, $cat | kvmscope guest - $piped s"
done
plain=$(best "$kvmscope guest '$file'")
echo "guest plain: $plain s"
