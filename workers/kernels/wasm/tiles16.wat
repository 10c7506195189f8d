;; Fused histogram + Blosc byte shuffle of one strip of a uint16 frame (WebAssembly SIMD).
;; The JS kernel in ../tiles.ts is the reference: ../tiles-simd.ts copies a strip of rows in, calls
;; `strip`, and copies each tile's low-byte and high-byte planes out; the test compares bit-exact.
;; Memory (owned by the caller): the strip (rows x width x 2 bytes, row-major), the output (tile tx's
;; row y of low bytes at out + tx * tile_stride + y * cx, its high bytes hi_offset further: a scratch
;; strip or the chunk-major z-block itself), two histograms of 65536 u32 (two so
;; that runs of one value, the background of a microscope frame, do not serialise on one counter)
;; and one u32 per tile that receives the OR of the tile's samples (0 = an all-zero tile).
(module
  (memory (export "memory") 1)

  ;; width and cx multiples of 16 (the caller checks); the last tile may be narrower than cx.
  (func (export "strip") (param $in i32) (param $width i32) (param $rows i32) (param $cx i32)
                        (param $out i32) (param $tile_stride i32) (param $hi_offset i32) (param $hist i32) (param $any i32)
                        (param $y0 i32) (param $hist_every i32)
    (local $tiles i32) (local $tx i32) (local $tw i32) (local $y i32) (local $s i32) (local $send i32)
    (local $lo i32) (local $hi i32) (local $acc v128) (local $v0 v128) (local $v1 v128)
    (local $h2 i32) (local $k i32) (local $p i32) (local $count i32)
    (local.set $h2 (i32.add (local.get $hist) (i32.const 262144)))
    (local.set $tiles (i32.div_u (i32.sub (i32.add (local.get $width) (local.get $cx)) (i32.const 1)) (local.get $cx)))
    (local.set $tx (i32.const 0))
    (block $tiles_done (loop $tile
      (br_if $tiles_done (i32.ge_u (local.get $tx) (local.get $tiles)))
      (local.set $tw (i32.sub (local.get $width) (i32.mul (local.get $tx) (local.get $cx))))
      (if (i32.gt_u (local.get $tw) (local.get $cx)) (then (local.set $tw (local.get $cx))))
      (local.set $acc (v128.const i64x2 0 0))
      (local.set $y (i32.const 0))
      (block $rows_done (loop $row
        (br_if $rows_done (i32.ge_u (local.get $y) (local.get $rows)))
        ;; source: row y, column tx * cx; destination: tile tx, row y
        (local.set $s (i32.add (local.get $in)
          (i32.shl (i32.add (i32.mul (local.get $y) (local.get $width)) (i32.mul (local.get $tx) (local.get $cx))) (i32.const 1))))
        (local.set $send (i32.add (local.get $s) (i32.shl (local.get $tw) (i32.const 1))))
        (local.set $lo (i32.add (i32.add (local.get $out) (i32.mul (local.get $tx) (local.get $tile_stride)))
          (i32.mul (local.get $y) (local.get $cx))))
        (local.set $hi (i32.add (local.get $lo) (local.get $hi_offset)))
        ;; frame row y0 + y enters the histogram when it is a multiple of hist_every (1 = every row)
        (local.set $count (i32.eqz (i32.rem_u (i32.add (local.get $y0) (local.get $y)) (local.get $hist_every))))
        (block $px_done (loop $px
          (br_if $px_done (i32.ge_u (local.get $s) (local.get $send)))
          (local.set $v0 (v128.load (local.get $s)))
          (local.set $v1 (v128.load offset=16 (local.get $s)))
          (local.set $acc (v128.or (local.get $acc) (v128.or (local.get $v0) (local.get $v1))))
          (v128.store (local.get $lo)
            (i8x16.shuffle 0 2 4 6 8 10 12 14 16 18 20 22 24 26 28 30 (local.get $v0) (local.get $v1)))
          (v128.store (local.get $hi)
            (i8x16.shuffle 1 3 5 7 9 11 13 15 17 19 21 23 25 27 29 31 (local.get $v0) (local.get $v1)))
          ;; 16 histogram increments, unrolled: even samples into the first table, odd into the second
          (if (local.get $count) (then
            (local.set $p (i32.add (local.get $hist) (i32.shl (i32.load16_u offset=0 (local.get $s)) (i32.const 2))))
            (i32.store (local.get $p) (i32.add (i32.load (local.get $p)) (i32.const 1)))
            (local.set $p (i32.add (local.get $h2) (i32.shl (i32.load16_u offset=2 (local.get $s)) (i32.const 2))))
            (i32.store (local.get $p) (i32.add (i32.load (local.get $p)) (i32.const 1)))
            (local.set $p (i32.add (local.get $hist) (i32.shl (i32.load16_u offset=4 (local.get $s)) (i32.const 2))))
            (i32.store (local.get $p) (i32.add (i32.load (local.get $p)) (i32.const 1)))
            (local.set $p (i32.add (local.get $h2) (i32.shl (i32.load16_u offset=6 (local.get $s)) (i32.const 2))))
            (i32.store (local.get $p) (i32.add (i32.load (local.get $p)) (i32.const 1)))
            (local.set $p (i32.add (local.get $hist) (i32.shl (i32.load16_u offset=8 (local.get $s)) (i32.const 2))))
            (i32.store (local.get $p) (i32.add (i32.load (local.get $p)) (i32.const 1)))
            (local.set $p (i32.add (local.get $h2) (i32.shl (i32.load16_u offset=10 (local.get $s)) (i32.const 2))))
            (i32.store (local.get $p) (i32.add (i32.load (local.get $p)) (i32.const 1)))
            (local.set $p (i32.add (local.get $hist) (i32.shl (i32.load16_u offset=12 (local.get $s)) (i32.const 2))))
            (i32.store (local.get $p) (i32.add (i32.load (local.get $p)) (i32.const 1)))
            (local.set $p (i32.add (local.get $h2) (i32.shl (i32.load16_u offset=14 (local.get $s)) (i32.const 2))))
            (i32.store (local.get $p) (i32.add (i32.load (local.get $p)) (i32.const 1)))
            (local.set $p (i32.add (local.get $hist) (i32.shl (i32.load16_u offset=16 (local.get $s)) (i32.const 2))))
            (i32.store (local.get $p) (i32.add (i32.load (local.get $p)) (i32.const 1)))
            (local.set $p (i32.add (local.get $h2) (i32.shl (i32.load16_u offset=18 (local.get $s)) (i32.const 2))))
            (i32.store (local.get $p) (i32.add (i32.load (local.get $p)) (i32.const 1)))
            (local.set $p (i32.add (local.get $hist) (i32.shl (i32.load16_u offset=20 (local.get $s)) (i32.const 2))))
            (i32.store (local.get $p) (i32.add (i32.load (local.get $p)) (i32.const 1)))
            (local.set $p (i32.add (local.get $h2) (i32.shl (i32.load16_u offset=22 (local.get $s)) (i32.const 2))))
            (i32.store (local.get $p) (i32.add (i32.load (local.get $p)) (i32.const 1)))
            (local.set $p (i32.add (local.get $hist) (i32.shl (i32.load16_u offset=24 (local.get $s)) (i32.const 2))))
            (i32.store (local.get $p) (i32.add (i32.load (local.get $p)) (i32.const 1)))
            (local.set $p (i32.add (local.get $h2) (i32.shl (i32.load16_u offset=26 (local.get $s)) (i32.const 2))))
            (i32.store (local.get $p) (i32.add (i32.load (local.get $p)) (i32.const 1)))
            (local.set $p (i32.add (local.get $hist) (i32.shl (i32.load16_u offset=28 (local.get $s)) (i32.const 2))))
            (i32.store (local.get $p) (i32.add (i32.load (local.get $p)) (i32.const 1)))
            (local.set $p (i32.add (local.get $h2) (i32.shl (i32.load16_u offset=30 (local.get $s)) (i32.const 2))))
            (i32.store (local.get $p) (i32.add (i32.load (local.get $p)) (i32.const 1)))))
          (local.set $s (i32.add (local.get $s) (i32.const 32)))
          (local.set $lo (i32.add (local.get $lo) (i32.const 16)))
          (local.set $hi (i32.add (local.get $hi) (i32.const 16)))
          (br $px)))
        (local.set $y (i32.add (local.get $y) (i32.const 1)))
        (br $row)))
      (i32.store (i32.add (local.get $any) (i32.shl (local.get $tx) (i32.const 2)))
        (i32.or (i32.load (i32.add (local.get $any) (i32.shl (local.get $tx) (i32.const 2))))
          (i32.or (i32.or (i32x4.extract_lane 0 (local.get $acc)) (i32x4.extract_lane 1 (local.get $acc)))
                  (i32.or (i32x4.extract_lane 2 (local.get $acc)) (i32x4.extract_lane 3 (local.get $acc))))))
      (local.set $tx (i32.add (local.get $tx) (i32.const 1)))
      (br $tile))))

  ;; hist[i] += hist[65536 + i]: the two tables folded into the first (which the caller then reads).
  (func (export "fold") (param $hist i32)
    (local $p i32) (local $end i32)
    (local.set $p (local.get $hist))
    (local.set $end (i32.add (local.get $hist) (i32.const 262144)))
    (loop $l
      (v128.store (local.get $p) (i32x4.add (v128.load (local.get $p)) (v128.load offset=262144 (local.get $p))))
      (local.set $p (i32.add (local.get $p) (i32.const 16)))
      (br_if $l (i32.lt_u (local.get $p) (local.get $end)))))

;; The live volume's max binning, fused into the same strips (see ../preview.ts binMaxPlane, the
;; reference): `colmax` max-accumulates rows of a strip into one row of column maxima, `binrow` takes
;; the maximum of each run of `step` columns of that row into out (u16 each) and clears the row.
  (func (export "colmax") (param $in i32) (param $width i32) (param $rows i32) (param $col i32)
    (local $y i32) (local $s i32) (local $c i32) (local $cend i32)
    (local.set $cend (i32.add (local.get $col) (i32.shl (local.get $width) (i32.const 1))))
    (local.set $s (local.get $in))
    (block $done (loop $row
      (br_if $done (i32.ge_u (local.get $y) (local.get $rows)))
      (local.set $c (local.get $col))
      (loop $px
        (v128.store (local.get $c) (i16x8.max_u (v128.load (local.get $c)) (v128.load (local.get $s))))
        (local.set $c (i32.add (local.get $c) (i32.const 16)))
        (local.set $s (i32.add (local.get $s) (i32.const 16)))
        (br_if $px (i32.lt_u (local.get $c) (local.get $cend))))
      (local.set $y (i32.add (local.get $y) (i32.const 1)))
      (br $row))))

  (func (export "binrow") (param $col i32) (param $width i32) (param $step i32) (param $out i32)
    (local $x i32) (local $end i32) (local $m i32) (local $v i32) (local $acc v128)
    ;; step a multiple of 8: whole blocks take vector maxima, then one horizontal maximum each
    (if (i32.eqz (i32.and (local.get $step) (i32.const 7))) (then
      (block $vdone (loop $vblock
        (local.set $end (i32.add (local.get $x) (local.get $step)))
        (br_if $vdone (i32.gt_u (local.get $end) (local.get $width)))
        (local.set $acc (v128.load (i32.add (local.get $col) (i32.shl (local.get $x) (i32.const 1)))))
        (local.set $x (i32.add (local.get $x) (i32.const 8)))
        (block $vin_done (loop $vin
          (br_if $vin_done (i32.ge_u (local.get $x) (local.get $end)))
          (local.set $acc (i16x8.max_u (local.get $acc) (v128.load (i32.add (local.get $col) (i32.shl (local.get $x) (i32.const 1))))))
          (local.set $x (i32.add (local.get $x) (i32.const 8)))
          (br $vin)))
        (local.set $acc (i16x8.max_u (local.get $acc)
          (i8x16.shuffle 8 9 10 11 12 13 14 15 0 1 2 3 4 5 6 7 (local.get $acc) (local.get $acc))))
        (local.set $acc (i16x8.max_u (local.get $acc)
          (i8x16.shuffle 4 5 6 7 0 1 2 3 12 13 14 15 8 9 10 11 (local.get $acc) (local.get $acc))))
        (local.set $acc (i16x8.max_u (local.get $acc)
          (i8x16.shuffle 2 3 0 1 6 7 4 5 10 11 8 9 14 15 12 13 (local.get $acc) (local.get $acc))))
        (i32.store16 (local.get $out) (i16x8.extract_lane_u 0 (local.get $acc)))
        (local.set $out (i32.add (local.get $out) (i32.const 2)))
        (br $vblock)))))
    ;; any step (and the narrower last block): one sample at a time
    (block $done (loop $block
      (br_if $done (i32.ge_u (local.get $x) (local.get $width)))
      (local.set $end (i32.add (local.get $x) (local.get $step)))
      (if (i32.gt_u (local.get $end) (local.get $width)) (then (local.set $end (local.get $width))))
      (local.set $m (i32.const 0))
      (loop $px
        (local.set $v (i32.load16_u (i32.add (local.get $col) (i32.shl (local.get $x) (i32.const 1)))))
        (if (i32.gt_u (local.get $v) (local.get $m)) (then (local.set $m (local.get $v))))
        (local.set $x (i32.add (local.get $x) (i32.const 1)))
        (br_if $px (i32.lt_u (local.get $x) (local.get $end))))
      (i32.store16 (local.get $out) (local.get $m))
      (local.set $out (i32.add (local.get $out) (i32.const 2)))
      (br $block)))
    (memory.fill (local.get $col) (i32.const 0) (i32.shl (local.get $width) (i32.const 1))))

  (func (export "zero") (param $p i32) (param $n i32)
    (memory.fill (local.get $p) (i32.const 0) (local.get $n)))
)
