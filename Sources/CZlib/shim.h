// The system zlib (Debian: zlib1g-dev), for gzip-compressed inputs.
#include <zlib.h>

// inflateInit2() is a macro (it passes the header's version and the struct size), which Swift
// cannot call: this is the same call as a function.
static inline int kvmscope_inflate_init_gzip(z_stream *strm) {
    // 15 + 16: a 32 KiB window and a gzip wrapper only (RFC 1952), as zlib.h documents for
    // inflateInit2's windowBits; a raw zlib or deflate stream is not something admins have.
    return inflateInit2(strm, 15 + 16);
}
