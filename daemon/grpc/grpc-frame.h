/* The gRPC length-prefixed message codec: pure byte handling, no I/O, so it can be fuzzed alone. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define GRPC_FRAME_HEADER_SIZE 5

/* Reassembles messages from DATA chunks, whose boundaries have nothing to do with message
 * boundaries. The payload is bounded by max_message: an oversize length prefix is refused as soon
 * as its 5 header bytes are in, before any of the payload is buffered. */
typedef struct GrpcFrameReader {
        uint8_t *data;
        size_t start; /* first unconsumed byte */
        size_t size;  /* bytes held (from data[0]) */
        size_t scan;  /* offset of the next message header not yet validated (may be > size) */
        size_t alloc;
        size_t max_message;
        int error; /* sticky: once the stream is broken, stays broken */
} GrpcFrameReader;

void grpc_frame_reader_init(GrpcFrameReader *r, size_t max_message);
void grpc_frame_reader_done(GrpcFrameReader *r);

/* Appends a chunk. Returns 0, or the sticky error: -EMSGSIZE (length prefix above max_message),
 * -EPROTONOSUPPORT (compressed flag set: we accept identity only), -EBADMSG (flag byte other than
 * 0 or 1), -ENOMEM. */
int grpc_frame_reader_feed(GrpcFrameReader *r, const uint8_t *chunk, size_t n);

/* Returns 1 and the next complete message (valid until the next feed or done; *ret_msg may be
 * NULL when *ret_size is 0), 0 when more bytes are needed, or the sticky error. */
int grpc_frame_reader_next(GrpcFrameReader *r, const uint8_t **ret_msg, size_t *ret_size);

/* Gives the buffer back once every message in it was taken (call it when done with the last
 * message from next(); the pointers next() returned are invalid afterwards). */
void grpc_frame_reader_trim(GrpcFrameReader *r);

/* Bytes of memory the reader holds (its buffer's capacity), for memory budgets. */
size_t grpc_frame_reader_allocated(const GrpcFrameReader *r);

/* Bytes held that do not yet form a complete message (non-zero at end of stream = truncated). */
size_t grpc_frame_reader_pending(const GrpcFrameReader *r);

/* The declared length of the last header looked at, e.g. the one that caused -EMSGSIZE (for
 * "larger than max (X vs. Y)" messages). */
bool grpc_frame_reader_declared_size(const GrpcFrameReader *r, uint64_t *ret_size);

/* Writes the 5-byte prefix of an uncompressed message of 'size' bytes; -EMSGSIZE above 4 GiB-1. */
int grpc_frame_header_encode(uint8_t out[GRPC_FRAME_HEADER_SIZE], size_t size);

/* Parses "grpc-timeout" (1-8 digits and a unit H M S m u n) into microseconds, rounded up. */
int grpc_timeout_parse(const char *s, uint64_t *ret_usec);
