/* The gRPC length-prefixed message codec and grpc-timeout parsing (pure functions over bytes). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "grpc-frame.h"

void grpc_frame_reader_init(GrpcFrameReader *r, size_t max_message) {
        *r = (GrpcFrameReader){.max_message = max_message};
}

void grpc_frame_reader_done(GrpcFrameReader *r) {
        free(r->data);
        *r = (GrpcFrameReader){.max_message = r->max_message};
}

static uint32_t header_length(const uint8_t *p) {
        return (uint32_t)p[1] << 24 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 8 | (uint32_t)p[4];
}

/* Buffers above this are given back once they are empty, so one large message does not keep its
 * memory for the rest of a long-lived stream. */
#define KEEP_ALLOCATED (64 * 1024)

static int reserve(GrpcFrameReader *r, size_t more) {
        if (r->size + more <= r->alloc)
                return 0;
        /* Consumed bytes at the front are dead: compact before growing. */
        if (r->start > 0) {
                memmove(r->data, r->data + r->start, r->size - r->start);
                r->size -= r->start;
                r->scan -= r->start;
                r->start = 0;
                if (r->size + more <= r->alloc)
                        return 0;
        }
        /* Double (amortized copies), but never past the end of the message being received, whose
         * validated header says exactly how long it is: a 4 MiB message costs 4 MiB, not 8. */
        size_t need = r->size + more;
        size_t a = r->alloc ? r->alloc * 2 : 256;
        if (a < need)
                a = need;
        if (r->scan > need && a > r->scan)
                a = r->scan;
        uint8_t *d = realloc(r->data, a);
        if (!d)
                return -ENOMEM;
        r->data = d;
        r->alloc = a;
        return 0;
}

int grpc_frame_reader_feed(GrpcFrameReader *r, const uint8_t *chunk, size_t n) {
        if (r->error < 0)
                return r->error;

        while (n > 0) {
                /* Never append past the end of the next unvalidated header: an oversize prefix is
                 * refused before any byte of its payload is stored. */
                size_t take = n;
                if (r->size < r->scan + GRPC_FRAME_HEADER_SIZE &&
                    r->scan + GRPC_FRAME_HEADER_SIZE - r->size < take)
                        take = r->scan + GRPC_FRAME_HEADER_SIZE - r->size;

                if (reserve(r, take) < 0)
                        return (r->error = -ENOMEM);
                memcpy(r->data + r->size, chunk, take);
                r->size += take;
                chunk += take;
                n -= take;

                while (r->size >= r->scan + GRPC_FRAME_HEADER_SIZE) {
                        const uint8_t *p = r->data + r->scan;
                        if (p[0] == 1)
                                return (r->error = -EPROTONOSUPPORT);
                        if (p[0] != 0)
                                return (r->error = -EBADMSG);
                        if (header_length(p) > r->max_message)
                                return (r->error = -EMSGSIZE);
                        r->scan += GRPC_FRAME_HEADER_SIZE + (size_t)header_length(p);
                }
        }
        return 0;
}

int grpc_frame_reader_next(GrpcFrameReader *r, const uint8_t **ret_msg, size_t *ret_size) {
        if (r->error < 0)
                return r->error;

        size_t have = r->size - r->start;
        if (have < GRPC_FRAME_HEADER_SIZE)
                return 0;
        /* feed() validated this header already (scan is past it). */
        size_t len = header_length(r->data + r->start);
        if (have - GRPC_FRAME_HEADER_SIZE < len)
                return 0;

        *ret_msg = len > 0 ? r->data + r->start + GRPC_FRAME_HEADER_SIZE : NULL;
        *ret_size = len;
        r->start += GRPC_FRAME_HEADER_SIZE + len;
        return 1;
}

void grpc_frame_reader_trim(GrpcFrameReader *r) {
        if (r->start < r->size)
                return;
        /* Empty: offsets restart at 0 (scan may point past the end only while a message is
         * incomplete, which an empty buffer is not). */
        r->scan -= r->size;
        r->start = r->size = 0;
        if (r->alloc > KEEP_ALLOCATED) {
                free(r->data);
                r->data = NULL;
                r->alloc = 0;
        }
}

size_t grpc_frame_reader_allocated(const GrpcFrameReader *r) {
        return r->alloc;
}

size_t grpc_frame_reader_pending(const GrpcFrameReader *r) {
        return r->size - r->start;
}

bool grpc_frame_reader_declared_size(const GrpcFrameReader *r, uint64_t *ret_size) {
        /* After -EMSGSIZE, scan still points at the offending header. */
        if (r->size < r->scan + GRPC_FRAME_HEADER_SIZE)
                return false;
        *ret_size = header_length(r->data + r->scan);
        return true;
}

int grpc_frame_header_encode(uint8_t out[GRPC_FRAME_HEADER_SIZE], size_t size) {
        if (size > UINT32_MAX)
                return -EMSGSIZE;
        out[0] = 0;
        out[1] = (uint8_t)(size >> 24);
        out[2] = (uint8_t)(size >> 16);
        out[3] = (uint8_t)(size >> 8);
        out[4] = (uint8_t)size;
        return 0;
}

int grpc_timeout_parse(const char *s, uint64_t *ret_usec) {
        uint64_t v = 0;
        size_t digits = 0;

        if (!s)
                return -EINVAL;
        for (; *s >= '0' && *s <= '9'; s++) {
                if (++digits > 8)
                        return -EINVAL;
                v = v * 10 + (uint64_t)(*s - '0');
        }
        if (digits == 0 || s[0] == '\0' || s[1] != '\0')
                return -EINVAL;

        /* 8 digits of hours still fit in 64 bits of microseconds (1e8 * 3.6e9 < 2^63). */
        switch (s[0]) {
        case 'H':
                v *= UINT64_C(3600000000);
                break;
        case 'M':
                v *= UINT64_C(60000000);
                break;
        case 'S':
                v *= UINT64_C(1000000);
                break;
        case 'm':
                v *= UINT64_C(1000);
                break;
        case 'u':
                break;
        case 'n':
                v = (v + 999) / 1000;
                break;
        default:
                return -EINVAL;
        }
        *ret_usec = v;
        return 0;
}
