/*
 * The protobuf wire format, as much of it as the spawner helper needs: a
 * bounds-checked reader (varints, tags, length-delimited fields, skipping
 * unknown fields of every wire type, groups included) and an appending
 * writer. The messages themselves are defined in
 * proto/taskframe/v1/spawner.proto; taskframe-spawner.c maps their fields.
 * Tested against protobuf-es by sidecar/spawner/native-wire.test.ts.
 */
#ifndef TASKFRAME_WIRE_H
#define TASKFRAME_WIRE_H

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

enum { WIRE_VARINT = 0, WIRE_I64 = 1, WIRE_LEN = 2, WIRE_SGROUP = 3, WIRE_EGROUP = 4, WIRE_I32 = 5 };

/* Groups nest; deeper than this is refused rather than recursed into. */
#define WIRE_MAX_DEPTH 64

typedef struct {
  const uint8_t *p;
  const uint8_t *end;
} wire_reader;

/* Each returns 0 on success, -1 on malformed or truncated input. */

static inline int wire_varint(wire_reader *r, uint64_t *out) {
  uint64_t value = 0;
  for (int i = 0; i < 10; i++) {
    if (r->p >= r->end) return -1;
    uint8_t byte = *r->p++;
    /* the tenth byte holds bit 63 only */
    if (i == 9 && byte > 1) return -1;
    value |= (uint64_t)(byte & 0x7f) << (7 * i);
    if (!(byte & 0x80)) {
      *out = value;
      return 0;
    }
  }
  return -1;
}

static inline int wire_tag(wire_reader *r, uint32_t *field, uint32_t *type) {
  uint64_t tag;
  if (wire_varint(r, &tag) != 0) return -1;
  *field = (uint32_t)(tag >> 3);
  *type = (uint32_t)(tag & 7);
  /* field numbers are 1 .. 2^29-1 */
  if (*field == 0 || tag >> 32 != 0) return -1;
  return 0;
}

static inline int wire_len(wire_reader *r, const uint8_t **data, size_t *len) {
  uint64_t n;
  if (wire_varint(r, &n) != 0) return -1;
  if (n > (uint64_t)(r->end - r->p)) return -1;
  *data = r->p;
  *len = (size_t)n;
  r->p += n;
  return 0;
}

static inline int wire_skip_depth(wire_reader *r, uint32_t field, uint32_t type, int depth) {
  uint64_t ignored;
  const uint8_t *data;
  size_t len;
  switch (type) {
    case WIRE_VARINT:
      return wire_varint(r, &ignored);
    case WIRE_I64:
      if (r->end - r->p < 8) return -1;
      r->p += 8;
      return 0;
    case WIRE_LEN:
      return wire_len(r, &data, &len);
    case WIRE_I32:
      if (r->end - r->p < 4) return -1;
      r->p += 4;
      return 0;
    case WIRE_SGROUP:
      if (depth >= WIRE_MAX_DEPTH) return -1;
      for (;;) {
        uint32_t inner, inner_type;
        if (wire_tag(r, &inner, &inner_type) != 0) return -1;
        if (inner_type == WIRE_EGROUP) return inner == field ? 0 : -1;
        if (wire_skip_depth(r, inner, inner_type, depth + 1) != 0) return -1;
      }
    default: /* an end-group without its start, or wire types 6 and 7 */
      return -1;
  }
}

/* Skips the value of a field whose tag was just read. */
static inline int wire_skip(wire_reader *r, uint32_t field, uint32_t type) {
  return wire_skip_depth(r, field, type, 0);
}

/* A growable byte buffer; on allocation failure the process exits (nothing sane is left to do). */
typedef struct {
  uint8_t *data;
  size_t len;
  size_t cap;
} wire_buf;

void wire_out_of_memory(void);

static inline uint8_t *wire_reserve(wire_buf *b, size_t extra) {
  if (b->cap - b->len < extra) {
    size_t cap = b->cap ? b->cap : 256;
    while (cap - b->len < extra) cap *= 2;
    uint8_t *grown = realloc(b->data, cap);
    if (!grown) wire_out_of_memory();
    b->data = grown;
    b->cap = cap;
  }
  return b->data + b->len;
}

static inline size_t wire_varint_size(uint64_t v) {
  size_t n = 1;
  while (v >= 0x80) {
    v >>= 7;
    n++;
  }
  return n;
}

static inline void wire_put_varint(wire_buf *b, uint64_t v) {
  uint8_t *p = wire_reserve(b, 10);
  size_t n = 0;
  while (v >= 0x80) {
    p[n++] = (uint8_t)(v | 0x80);
    v >>= 7;
  }
  p[n++] = (uint8_t)v;
  b->len += n;
}

static inline void wire_put_tag(wire_buf *b, uint32_t field, uint32_t type) {
  wire_put_varint(b, ((uint64_t)field << 3) | type);
}

static inline void wire_put_bytes(wire_buf *b, uint32_t field, const void *data, size_t len) {
  wire_put_tag(b, field, WIRE_LEN);
  wire_put_varint(b, len);
  if (len) memcpy(wire_reserve(b, len), data, len);
  b->len += len;
}

/* proto3 implicit presence: zero values are left out. */
static inline void wire_put_uint(wire_buf *b, uint32_t field, uint64_t v) {
  if (v == 0) return;
  wire_put_tag(b, field, WIRE_VARINT);
  wire_put_varint(b, v);
}

static inline void wire_put_string(wire_buf *b, uint32_t field, const char *s, size_t len) {
  if (len) wire_put_bytes(b, field, s, len);
}

static inline void wire_put_double(wire_buf *b, uint32_t field, double v) {
  uint64_t bits;
  memcpy(&bits, &v, 8);
  if (bits == 0) return;
  wire_put_tag(b, field, WIRE_I64);
  uint8_t *p = wire_reserve(b, 8);
  for (int i = 0; i < 8; i++) p[i] = (uint8_t)(bits >> (8 * i));
  b->len += 8;
}

/* Appends `message` (already encoded) as field `field` of the message being written. */
static inline void wire_put_message(wire_buf *b, uint32_t field, const wire_buf *message) {
  wire_put_bytes(b, field, message->data, message->len);
}

#endif
