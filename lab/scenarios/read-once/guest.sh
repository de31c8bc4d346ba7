# read-once (runs in the guest). 64 KiB block 64 = sectors 8192..8319.
set -x
# Fails: the request covers the injected sector 8200.
dd if=/dev/vda of=/dev/null bs=65536 skip=64 count=1 iflag=direct
echo "first read exit status $?"
# The same read again succeeds: the rule was "once".
dd if=/dev/vda of=/dev/null bs=65536 skip=64 count=1 iflag=direct
echo "second read exit status $?"
