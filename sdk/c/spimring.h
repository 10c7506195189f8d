/*
 * spimring.h — a single-header C99 producer for the spimstream shared-memory ring, version 1
 * (docs/ring-protocol.md). POSIX (mmap); GCC or Clang (atomic builtins). No dependency beyond libc.
 *
 * In exactly one C or C++ file:
 *     #define SPIMRING_IMPLEMENTATION
 *     #include "spimring.h"
 * or link libspimring.so (`make -C sdk/c`), e.g. from LabVIEW (Call Library Function Node), Java
 * (Panama/JNA), Python (ctypes).
 *
 *     spimring *r;
 *     int e = spimring_create(&r, "/dev/shm/scope0", 2048, 2048, 2, 16, 64, 100, 2, 1);
 *     if (e) { fprintf(stderr, "%s\n", spimring_strerror(e)); return 1; }
 *     spimring_start(r);
 *     for (...) spimring_publish(r, pixels, t, c, z, 0, camera_counter);
 *     spimring_finish(r);
 *     spimring_close(r);   // removes the ring file; spimring_keep(r, 1) first to leave it
 *
 * The producer never waits for spimstream. Every 8-byte counter is one aligned atomic store; the
 * pixels are bracketed by seq_begin and seq_end with release ordering, so spimstream never takes a
 * frame overwritten while it copied it. One writer per ring; the functions are not thread-safe on
 * the same ring (serialize publishes from one thread).
 */
#ifndef SPIMRING_H
#define SPIMRING_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct spimring spimring;

/* Error codes: 0 is success; each negative code names what is wrong (spimring_strerror). */
enum {
  SPIMRING_OK = 0,
  SPIMRING_E_NULL = -1,        /* a NULL ring, path or pixels */
  SPIMRING_E_WIDTH = -2,       /* width: 1 … 65536 */
  SPIMRING_E_HEIGHT = -3,      /* height: 1 … 65536 */
  SPIMRING_E_BYTES_PER_PIXEL = -4, /* 1 (uint8) or 2 (uint16) */
  SPIMRING_E_BIT_DEPTH = -5,   /* 1 … 8 × bytes_per_pixel */
  SPIMRING_E_SLOTS = -6,       /* 2 … 1048576 */
  SPIMRING_E_FRAME_SIZE = -7,  /* width × height × bytes_per_pixel must be below 4 GiB */
  SPIMRING_E_C = -8,           /* c: 0 ≤ c < channels */
  SPIMRING_E_Z = -9,           /* z: 0 ≤ z < z_planes */
  SPIMRING_E_VIEW = -10,       /* view: 0 ≤ view < views */
  SPIMRING_E_IO = -11,         /* creating or mapping the file failed: errno says why */
  SPIMRING_E_NOMEM = -12
};

#define SPIMRING_FLAG_STACK_START 1u
#define SPIMRING_FLAG_STACK_END 2u

/* Creates the ring at `path` (built under a temporary name, then renamed into place). z_planes,
 * channels and views of 0 mean 1. On success *out is the ring; on failure *out is NULL. */
int spimring_create(spimring **out, const char *path, uint32_t width, uint32_t height, uint32_t bytes_per_pixel,
                    uint32_t bit_depth, uint32_t slots, uint32_t z_planes, uint32_t channels, uint32_t views);
/* Starts an acquisition: its frames are stored. */
int spimring_start(spimring *r);
/* Copies one frame (width × height pixels, row-major, native little-endian) into the next slot. */
int spimring_publish(spimring *r, const void *pixels, uint32_t t, uint32_t c, uint32_t z, uint32_t view,
                     uint64_t camera_counter);
/* As spimring_publish, with the acquisition time (ns since the Unix epoch) and flags given. */
int spimring_publish_ex(spimring *r, const void *pixels, uint32_t t, uint32_t c, uint32_t z, uint32_t view,
                        uint64_t camera_counter, uint64_t timestamp_ns, uint32_t flags);
/* Ends the acquisition after its last published frame. */
int spimring_finish(spimring *r);
/* Frames published so far. */
uint64_t spimring_written(const spimring *r);
/* keep = 1: spimring_close leaves the ring file in place (for a sidecar started later). */
void spimring_keep(spimring *r, int keep);
/* Ends a running acquisition, unmaps, removes the file (unless kept) and frees r. NULL is ignored. */
int spimring_close(spimring *r);
/* One line naming what an error code means. */
const char *spimring_strerror(int code);

#ifdef __cplusplus
}
#endif
#endif /* SPIMRING_H */

#ifdef SPIMRING_IMPLEMENTATION
#ifndef SPIMRING_IMPLEMENTED
#define SPIMRING_IMPLEMENTED

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#define SPIMRING_HEADER_BYTES 4096u
#define SPIMRING_SLOT_HEADER_BYTES 64u
#define SPIMRING_SLOT_ALIGN 4096u
#define SPIMRING_STATE_ACQUIRING 1u
#define SPIMRING_STATE_FINISHED 2u

struct spimring {
  uint8_t *base;
  size_t size;
  uint64_t stride;
  uint32_t slots, width, height, bpp, z_planes, channels, views;
  size_t frame_bytes;
  uint64_t written, acquisition_id;
  int acquiring, keep;
  char *path;
};

/* Little-endian stores; the protocol is little-endian and so are the CPUs spimstream runs on. */
static void spimring_put32(uint8_t *p, uint32_t v) { memcpy(p, &v, 4); }
static void spimring_put64(uint8_t *p, uint64_t v) { memcpy(p, &v, 8); }
/* One aligned 8-byte store, ordered after every store before it (release). */
static void spimring_store64(uint8_t *p, uint64_t v) { __atomic_store_n((uint64_t *)(void *)p, v, __ATOMIC_RELEASE); }
static void spimring_store32(uint8_t *p, uint32_t v) { __atomic_store_n((uint32_t *)(void *)p, v, __ATOMIC_RELEASE); }

const char *spimring_strerror(int code) {
  switch (code) {
    case SPIMRING_OK: return "ok";
    case SPIMRING_E_NULL: return "spimring: a NULL ring, path or pixels pointer";
    case SPIMRING_E_WIDTH: return "spimring: width out of range, expected 1 ... 65536";
    case SPIMRING_E_HEIGHT: return "spimring: height out of range, expected 1 ... 65536";
    case SPIMRING_E_BYTES_PER_PIXEL: return "spimring: bytes_per_pixel must be 1 (uint8) or 2 (uint16)";
    case SPIMRING_E_BIT_DEPTH: return "spimring: bit_depth out of range, expected 1 ... 8 x bytes_per_pixel";
    case SPIMRING_E_SLOTS: return "spimring: slots out of range, expected 2 ... 1048576";
    case SPIMRING_E_FRAME_SIZE: return "spimring: width x height x bytes_per_pixel is 4 GiB or more";
    case SPIMRING_E_C: return "spimring: c out of range, expected 0 <= c < channels";
    case SPIMRING_E_Z: return "spimring: z out of range, expected 0 <= z < z_planes";
    case SPIMRING_E_VIEW: return "spimring: view out of range, expected 0 <= view < views";
    case SPIMRING_E_IO: return "spimring: creating or mapping the ring file failed (see errno)";
    case SPIMRING_E_NOMEM: return "spimring: out of memory";
    default: return "spimring: unknown error code";
  }
}

int spimring_create(spimring **out, const char *path, uint32_t width, uint32_t height, uint32_t bytes_per_pixel,
                    uint32_t bit_depth, uint32_t slots, uint32_t z_planes, uint32_t channels, uint32_t views) {
  spimring *r;
  uint8_t hdr[SPIMRING_HEADER_BYTES];
  uint64_t frame, stride, size;
  char *tmp;
  size_t n;
  int fd, e;
  if (out) *out = NULL;
  if (!out || !path) return SPIMRING_E_NULL;
  if (width < 1 || width > 65536) return SPIMRING_E_WIDTH;
  if (height < 1 || height > 65536) return SPIMRING_E_HEIGHT;
  if (bytes_per_pixel != 1 && bytes_per_pixel != 2) return SPIMRING_E_BYTES_PER_PIXEL;
  if (bit_depth < 1 || bit_depth > 8 * bytes_per_pixel) return SPIMRING_E_BIT_DEPTH;
  if (slots < 2 || slots > 1048576) return SPIMRING_E_SLOTS;
  frame = (uint64_t)width * height * bytes_per_pixel;
  if (frame > 0xFFFFFFFFu) return SPIMRING_E_FRAME_SIZE;
  stride = (SPIMRING_SLOT_HEADER_BYTES + frame + SPIMRING_SLOT_ALIGN - 1) / SPIMRING_SLOT_ALIGN * SPIMRING_SLOT_ALIGN;
  size = SPIMRING_HEADER_BYTES + (uint64_t)slots * stride;
  r = (spimring *)calloc(1, sizeof *r);
  n = strlen(path);
  tmp = (char *)malloc(n + 32);
  if (r) r->path = (char *)malloc(n + 1);
  if (!r || !tmp || !r->path) {
    if (r) free(r->path);
    free(r);
    free(tmp);
    return SPIMRING_E_NOMEM;
  }
  memcpy(r->path, path, n + 1);
  snprintf(tmp, n + 32, "%s.tmp-%ld", path, (long)getpid());
  memset(hdr, 0, sizeof hdr);
  memcpy(hdr, "SPIMRING", 8);
  spimring_put32(hdr + 8, 1);
  spimring_put32(hdr + 12, SPIMRING_HEADER_BYTES);
  spimring_put32(hdr + 16, slots);
  spimring_put32(hdr + 20, SPIMRING_SLOT_HEADER_BYTES);
  spimring_put64(hdr + 24, stride);
  spimring_put32(hdr + 32, width);
  spimring_put32(hdr + 36, height);
  spimring_put32(hdr + 40, bytes_per_pixel);
  spimring_put32(hdr + 44, bit_depth);
  spimring_put32(hdr + 68, (uint32_t)getpid());
  spimring_put32(hdr + 72, z_planes ? z_planes : 1);
  spimring_put32(hdr + 76, channels ? channels : 1);
  spimring_put32(hdr + 80, views ? views : 1);
  fd = open(tmp, O_RDWR | O_CREAT | O_TRUNC, 0644);
  if (fd < 0) goto io;
  if (ftruncate(fd, (off_t)size) != 0 || pwrite(fd, hdr, sizeof hdr, 0) != (ssize_t)sizeof hdr) goto io_fd;
  r->base = (uint8_t *)mmap(NULL, (size_t)size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  if (r->base == MAP_FAILED) goto io_fd;
  if (rename(tmp, path) != 0) {
    e = errno;
    munmap(r->base, (size_t)size);
    errno = e;
    goto io_fd;
  }
  close(fd);
  free(tmp);
  r->size = (size_t)size;
  r->stride = stride;
  r->slots = slots;
  r->width = width;
  r->height = height;
  r->bpp = bytes_per_pixel;
  r->z_planes = z_planes ? z_planes : 1;
  r->channels = channels ? channels : 1;
  r->views = views ? views : 1;
  r->frame_bytes = (size_t)frame;
  *out = r;
  return SPIMRING_OK;
io_fd:
  e = errno;
  close(fd);
  unlink(tmp);
  errno = e;
io:
  e = errno;
  free(r->path);
  free(r);
  free(tmp);
  errno = e;
  return SPIMRING_E_IO;
}

int spimring_start(spimring *r) {
  if (!r) return SPIMRING_E_NULL;
  r->acquisition_id++;
  /* first frame, then id, then state: the order docs/ring-protocol.md gives */
  spimring_store64(r->base + 88, r->written);
  spimring_store64(r->base + 56, r->acquisition_id);
  spimring_store32(r->base + 64, SPIMRING_STATE_ACQUIRING);
  r->acquiring = 1;
  return SPIMRING_OK;
}

int spimring_finish(spimring *r) {
  if (!r) return SPIMRING_E_NULL;
  spimring_store32(r->base + 64, SPIMRING_STATE_FINISHED);
  r->acquiring = 0;
  return SPIMRING_OK;
}

int spimring_publish_ex(spimring *r, const void *pixels, uint32_t t, uint32_t c, uint32_t z, uint32_t view,
                        uint64_t camera_counter, uint64_t timestamp_ns, uint32_t flags) {
  uint64_t n;
  uint8_t *slot;
  if (!r || !pixels) return SPIMRING_E_NULL;
  if (c >= r->channels) return SPIMRING_E_C;
  if (z >= r->z_planes) return SPIMRING_E_Z;
  if (view >= r->views) return SPIMRING_E_VIEW;
  n = r->written;
  slot = r->base + SPIMRING_HEADER_BYTES + (n % r->slots) * r->stride;
  __atomic_store_n((uint64_t *)(void *)slot, n + 1, __ATOMIC_RELAXED); /* seq_begin */
  /* seq_begin is visible before any byte of the slot below changes */
  __atomic_thread_fence(__ATOMIC_RELEASE);
  spimring_put64(slot + 16, camera_counter);
  spimring_put64(slot + 24, timestamp_ns);
  spimring_put32(slot + 32, t);
  spimring_put32(slot + 36, c);
  spimring_put32(slot + 40, z);
  spimring_put32(slot + 44, view);
  spimring_put32(slot + 48, flags);
  spimring_put32(slot + 52, (uint32_t)r->frame_bytes);
  spimring_put32(slot + 56, r->width);
  spimring_put32(slot + 60, r->height);
  memcpy(slot + SPIMRING_SLOT_HEADER_BYTES, pixels, r->frame_bytes);
  spimring_store64(slot + 8, n + 1); /* seq_end, after the pixels */
  r->written = n + 1;
  spimring_store64(r->base + 48, r->written); /* write_count, last */
  return SPIMRING_OK;
}

int spimring_publish(spimring *r, const void *pixels, uint32_t t, uint32_t c, uint32_t z, uint32_t view,
                     uint64_t camera_counter) {
  struct timespec ts;
  uint32_t flags;
  if (!r) return SPIMRING_E_NULL;
  clock_gettime(CLOCK_REALTIME, &ts);
  flags = (z == 0 ? SPIMRING_FLAG_STACK_START : 0u) | (z + 1 == r->z_planes ? SPIMRING_FLAG_STACK_END : 0u);
  return spimring_publish_ex(r, pixels, t, c, z, view, camera_counter,
                             (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec, flags);
}

uint64_t spimring_written(const spimring *r) { return r ? r->written : 0; }

void spimring_keep(spimring *r, int keep) {
  if (r) r->keep = keep != 0;
}

int spimring_close(spimring *r) {
  int rc = SPIMRING_OK;
  if (!r) return SPIMRING_OK;
  if (r->acquiring) spimring_finish(r);
  if (munmap(r->base, r->size) != 0) rc = SPIMRING_E_IO;
  if (!r->keep && unlink(r->path) != 0 && errno != ENOENT) rc = SPIMRING_E_IO;
  free(r->path);
  free(r);
  return rc;
}

#endif /* SPIMRING_IMPLEMENTED */
#endif /* SPIMRING_IMPLEMENTATION */
