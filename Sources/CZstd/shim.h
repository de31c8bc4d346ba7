// The system libzstd (Debian: libzstd-dev), for zstd-compressed inputs.
#include <zstd.h>
#include <zstd_errors.h>
