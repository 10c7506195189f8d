/* Native c-blosc reference for bench/codec-bench: compresses a raw file with the given settings and
 * prints "<compressed bytes> <seconds per call>" on stdout. Built by the bench when libblosc-dev is there. */
#include <blosc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec + t.tv_nsec * 1e-9; }

int main(int argc, char **argv) {
  if (argc < 7) { fprintf(stderr, "usage: %s FILE CNAME CLEVEL SHUFFLE(0|1|2) TYPESIZE BLOCKSIZE [CHUNK_BYTES]\n", argv[0]); return 2; }
  FILE *f = fopen(argv[1], "rb");
  if (!f) { perror(argv[1]); return 2; }
  fseek(f, 0, SEEK_END); long n = ftell(f); fseek(f, 0, SEEK_SET);
  char *src = malloc(n); if (fread(src, 1, n, f) != (size_t)n) return 2; fclose(f);
  long chunk = argc > 7 ? atol(argv[7]) : n;
  char *dst = malloc(chunk + BLOSC_MAX_OVERHEAD);
  blosc_init(); blosc_set_nthreads(1);
  if (blosc_set_compressor(argv[2]) < 0) { fprintf(stderr, "compressor %s not available\n", argv[2]); return 3; }
  blosc_set_blocksize(atol(argv[6]));
  int clevel = atoi(argv[3]), shuffle = atoi(argv[4]); size_t ts = atoi(argv[5]);
  long total = 0; int runs = 0; double t0 = now();
  do {
    total = 0;
    for (long off = 0; off < n; off += chunk) {
      long len = n - off < chunk ? n - off : chunk;
      int c = blosc_compress(clevel, shuffle, ts, len, src + off, dst, len + BLOSC_MAX_OVERHEAD);
      if (c <= 0) { fprintf(stderr, "compress failed\n"); return 4; }
      total += c;
    }
    runs++;
  } while (now() - t0 < 0.5 || runs < 3);
  printf("%ld %.9f\n", total, (now() - t0) / runs);
  blosc_destroy();
  return 0;
}
