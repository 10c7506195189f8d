;; The preview of a uint16 frame (WebAssembly SIMD): 2 x 2 mean and maximum binning, the histogram
;; of the binned plane (for the percentile window), the 16 -> 8-bit mapping and the list of saturated
;; cells. The JS kernels in ../preview.ts are the references (binMean with bin 2, percentileWindow's
;; histogram, toByte, saturatedIndices); ../preview-simd.ts drives these and the test compares bit-exact.
(module
  (memory (export "memory") 1)

  ;; orows output rows from 2 * orows input rows at `in` (width a multiple of 16): mean[i] =
  ;; (p0 + p1 + p2 + p3 + 2) >> 2 and max[i] = max(p0..p3) of each 2 x 2 block.
  (func (export "bin2") (param $in i32) (param $width i32) (param $orows i32) (param $mean i32) (param $max i32)
    (local $y i32) (local $a i32) (local $b i32) (local $aend i32)
    (local $a0 v128) (local $a1 v128) (local $b0 v128) (local $b1 v128) (local $s0 v128) (local $s1 v128)
    (local $m0 v128) (local $m1 v128) (local $two v128)
    (local.set $two (i32x4.splat (i32.const 2)))
    (block $done (loop $row
      (br_if $done (i32.ge_u (local.get $y) (local.get $orows)))
      ;; input rows 2y and 2y + 1: width * 2 bytes each
      (local.set $a (i32.add (local.get $in) (i32.mul (local.get $y) (i32.shl (local.get $width) (i32.const 2)))))
      (local.set $b (i32.add (local.get $a) (i32.shl (local.get $width) (i32.const 1))))
      (local.set $aend (local.get $b))
      (loop $px
        (local.set $a0 (v128.load (local.get $a)))
        (local.set $a1 (v128.load offset=16 (local.get $a)))
        (local.set $b0 (v128.load (local.get $b)))
        (local.set $b1 (v128.load offset=16 (local.get $b)))
        ;; horizontal pair sums of each row (u32), then the two rows: no overflow
        (local.set $s0 (i32x4.add (i32x4.extadd_pairwise_i16x8_u (local.get $a0)) (i32x4.extadd_pairwise_i16x8_u (local.get $b0))))
        (local.set $s1 (i32x4.add (i32x4.extadd_pairwise_i16x8_u (local.get $a1)) (i32x4.extadd_pairwise_i16x8_u (local.get $b1))))
        (local.set $s0 (i32x4.shr_u (i32x4.add (local.get $s0) (local.get $two)) (i32.const 2)))
        (local.set $s1 (i32x4.shr_u (i32x4.add (local.get $s1) (local.get $two)) (i32.const 2)))
        (v128.store (local.get $mean) (i16x8.narrow_i32x4_u (local.get $s0) (local.get $s1)))
        ;; vertical maxima, then the maximum of each even lane and the odd lane after it
        (local.set $m0 (i16x8.max_u (local.get $a0) (local.get $b0)))
        (local.set $m1 (i16x8.max_u (local.get $a1) (local.get $b1)))
        (v128.store (local.get $max) (i16x8.max_u
          (i8x16.shuffle 0 1 4 5 8 9 12 13 16 17 20 21 24 25 28 29 (local.get $m0) (local.get $m1))
          (i8x16.shuffle 2 3 6 7 10 11 14 15 18 19 22 23 26 27 30 31 (local.get $m0) (local.get $m1))))
        (local.set $a (i32.add (local.get $a) (i32.const 32)))
        (local.set $b (i32.add (local.get $b) (i32.const 32)))
        (local.set $mean (i32.add (local.get $mean) (i32.const 16)))
        (local.set $max (i32.add (local.get $max) (i32.const 16)))
        (br_if $px (i32.lt_u (local.get $a) (local.get $aend))))
      (local.set $y (i32.add (local.get $y) (i32.const 1)))
      (br $row))))

  ;; Histogram of n u16 values (n even) into 65536 u32 at `hist`; a second table at hist + 256 KiB
  ;; takes the odd samples (runs of one value do not serialise on one counter) and is folded in.
  (func (export "hist") (param $in i32) (param $n i32) (param $hist i32)
    (local $p i32) (local $end i32) (local $h2 i32) (local $q i32)
    (local.set $h2 (i32.add (local.get $hist) (i32.const 262144)))
    (memory.fill (local.get $hist) (i32.const 0) (i32.const 524288))
    (local.set $p (local.get $in))
    (local.set $end (i32.add (local.get $in) (i32.shl (local.get $n) (i32.const 1))))
    (block $done (loop $l
      (br_if $done (i32.ge_u (local.get $p) (local.get $end)))
      (local.set $q (i32.add (local.get $hist) (i32.shl (i32.load16_u (local.get $p)) (i32.const 2))))
      (i32.store (local.get $q) (i32.add (i32.load (local.get $q)) (i32.const 1)))
      (local.set $q (i32.add (local.get $h2) (i32.shl (i32.load16_u offset=2 (local.get $p)) (i32.const 2))))
      (i32.store (local.get $q) (i32.add (i32.load (local.get $q)) (i32.const 1)))
      (local.set $p (i32.add (local.get $p) (i32.const 4)))
      (br $l)))
    (local.set $p (local.get $hist))
    (loop $f
      (v128.store (local.get $p) (i32x4.add (v128.load (local.get $p)) (v128.load offset=262144 (local.get $p))))
      (local.set $p (i32.add (local.get $p) (i32.const 16)))
      (br_if $f (i32.lt_u (local.get $p) (local.get $h2)))))

  ;; out[i] = trunc(clamp((in[i] - lo) * scale, 0, 255) + 0.5) in f64, as toByte does; n a multiple of 4.
  ;; Four samples per step: two f64x2 halves, each truncated into two i32 lanes, then narrowed to bytes.
  (func (export "tobyte") (param $in i32) (param $n i32) (param $lo f64) (param $scale f64) (param $out i32)
    (local $end i32) (local $w v128) (local $vlo v128) (local $vsc v128)
    (local $zero v128) (local $top v128) (local $half v128) (local $r0 v128) (local $r1 v128)
    (local.set $vlo (f64x2.splat (local.get $lo)))
    (local.set $vsc (f64x2.splat (local.get $scale)))
    (local.set $zero (f64x2.splat (f64.const 0)))
    (local.set $top (f64x2.splat (f64.const 255)))
    (local.set $half (f64x2.splat (f64.const 0.5)))
    (local.set $end (i32.add (local.get $in) (i32.shl (local.get $n) (i32.const 1))))
    (block $done (loop $l
      (br_if $done (i32.ge_u (local.get $in) (local.get $end)))
      ;; four u16 -> four i32
      (local.set $w (i32x4.extend_low_i16x8_u (v128.load64_zero (local.get $in))))
      (local.set $r0 (i32x4.trunc_sat_f64x2_s_zero (f64x2.add (f64x2.pmin (f64x2.pmax
        (f64x2.mul (f64x2.sub (f64x2.convert_low_i32x4_s (local.get $w)) (local.get $vlo)) (local.get $vsc))
        (local.get $zero)) (local.get $top)) (local.get $half))))
      (local.set $w (i8x16.shuffle 8 9 10 11 12 13 14 15 0 1 2 3 4 5 6 7 (local.get $w) (local.get $w)))
      (local.set $r1 (i32x4.trunc_sat_f64x2_s_zero (f64x2.add (f64x2.pmin (f64x2.pmax
        (f64x2.mul (f64x2.sub (f64x2.convert_low_i32x4_s (local.get $w)) (local.get $vlo)) (local.get $vsc))
        (local.get $zero)) (local.get $top)) (local.get $half))))
      ;; bytes 0, 4 of r0 and 0, 4 of r1 (each result is 0..255)
      (i32.store (local.get $out) (i32x4.extract_lane 0
        (i8x16.shuffle 0 4 16 20 0 0 0 0 0 0 0 0 0 0 0 0 (local.get $r0) (local.get $r1))))
      (local.set $in (i32.add (local.get $in) (i32.const 8)))
      (local.set $out (i32.add (local.get $out) (i32.const 4)))
      (br $l))))

  ;; out[i] = lut[in[i]] (u16 in, bytes out; n a multiple of 4): the mapping of a whole preview from
  ;; a 65536-entry table that `tobyte` filled from a ramp (cheaper than 1 M f64 evaluations).
  (func (export "lookup") (param $in i32) (param $n i32) (param $lut i32) (param $out i32)
    (local $end i32)
    (local.set $end (i32.add (local.get $in) (i32.shl (local.get $n) (i32.const 1))))
    (block $done (loop $l
      (br_if $done (i32.ge_u (local.get $in) (local.get $end)))
      (i32.store8 offset=0 (local.get $out) (i32.load8_u (i32.add (local.get $lut) (i32.load16_u offset=0 (local.get $in)))))
      (i32.store8 offset=1 (local.get $out) (i32.load8_u (i32.add (local.get $lut) (i32.load16_u offset=2 (local.get $in)))))
      (i32.store8 offset=2 (local.get $out) (i32.load8_u (i32.add (local.get $lut) (i32.load16_u offset=4 (local.get $in)))))
      (i32.store8 offset=3 (local.get $out) (i32.load8_u (i32.add (local.get $lut) (i32.load16_u offset=6 (local.get $in)))))
      (local.set $in (i32.add (local.get $in) (i32.const 8)))
      (local.set $out (i32.add (local.get $out) (i32.const 4)))
      (br $l))))

  ;; Indices i < n (n a multiple of 8) with max[i] >= level, ascending, at most cap, into out (u32);
  ;; returns how many there are in all (which may exceed cap).
  (func (export "saturated") (param $max i32) (param $n i32) (param $level i32) (param $out i32) (param $cap i32) (result i32)
    (local $i i32) (local $k i32) (local $count i32) (local $vl v128)
    (local.set $vl (i16x8.splat (local.get $level)))
    (block $done (loop $l
      (br_if $done (i32.ge_u (local.get $i) (local.get $n)))
      (if (v128.any_true (i16x8.ge_u (v128.load (i32.add (local.get $max) (i32.shl (local.get $i) (i32.const 1)))) (local.get $vl)))
        (then
          (local.set $k (local.get $i))
          (loop $one
            (if (i32.ge_u (i32.load16_u (i32.add (local.get $max) (i32.shl (local.get $k) (i32.const 1)))) (local.get $level))
              (then
                (if (i32.lt_u (local.get $count) (local.get $cap))
                  (then (i32.store (i32.add (local.get $out) (i32.shl (local.get $count) (i32.const 2))) (local.get $k))))
                (local.set $count (i32.add (local.get $count) (i32.const 1)))))
            (local.set $k (i32.add (local.get $k) (i32.const 1)))
            (br_if $one (i32.lt_u (local.get $k) (i32.add (local.get $i) (i32.const 8)))))))
      (local.set $i (i32.add (local.get $i) (i32.const 8)))
      (br $l)))
    (local.get $count))
)
