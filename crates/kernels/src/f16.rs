//! Half-precision matrix products for the encoder's linear layers, on CPUs with AVX-512 FP16.
//!
//! `vfmadd231ph` multiplies and adds 32 IEEE half-precision lanes per instruction at the rate
//! of a 16-lane f32 FMA, so a pass does twice the products per cycle and reads half the bytes
//! of weights. Half precision keeps 11 significant bits, so the products are summed in f16
//! only over [`SUM`] input positions at a time; each partial sum is then converted to f32 and
//! added to the f32 output. The error this leaves is checked against sentence-transformers on
//! the reference texts (`crates/ai/tests/reference.rs`).
//!
//! Weights are packed once ([`F16Panels::pack`]) in panels of 64 output columns like
//! [`crate::panels`]; a pass's input rows are rounded to f16 ([`to_halves`]), each value
//! stored twice in a 32-bit word so that one `vpbroadcastd` from memory (a plain load, no
//! shuffle port) spreads it over all 32 lanes.

use std::ops::Range;

/// Output columns per packed panel.
pub const BLOCK: usize = crate::PANEL;

/// Rows multiplied together: eight rows of two 32-lane accumulators (64 columns) are 16
/// registers, with two for the weights and one for the broadcast. (Twelve rows, 24
/// accumulators, made the compiler keep some on the stack and ran 1.25× slower.)
const ROWS: usize = 8;

/// Input positions summed in f16 before the partial sums go to the f32 output.
const SUM: usize = 32;

/// Whether this CPU has the instructions [`multiply_add`] needs.
pub fn available() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::arch::is_x86_feature_detected!("avx512f")
            && std::arch::is_x86_feature_detected!("avx512bw")
            && std::arch::is_x86_feature_detected!("avx512fp16")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// A linear layer's weight matrix (`out` rows of `width` values) in f16, packed in panels of
/// [`BLOCK`] rows for [`multiply_add`].
pub struct F16Panels {
    out: usize,
    width: usize,
    data: Vec<u16>,
}

impl F16Panels {
    /// Packs row-major `w` of `out` rows, each `width` wide, rounding to the nearest f16.
    ///
    /// # Panics
    /// When the shape does not match `w`, or the CPU lacks AVX-512 FP16 ([`available`]).
    pub fn pack(w: &[f32], out: usize, width: usize) -> Self {
        assert_eq!(w.len(), out * width, "F16Panels::pack: mismatched shape");
        assert!(available(), "F16Panels::pack: the CPU lacks AVX-512 FP16");
        let mut data = vec![0u16; out.div_ceil(BLOCK) * width * BLOCK];
        let mut row_halves = vec![0u16; width];
        for (r, row) in w.chunks_exact(width.max(1)).enumerate().take(out) {
            halves(row, &mut row_halves);
            let (block, lane) = (r / BLOCK, r % BLOCK);
            for (k, &h) in row_halves.iter().enumerate() {
                data[(block * width + k) * BLOCK + lane] = h;
            }
        }
        Self { out, width, data }
    }

    /// Output columns (the weight's rows).
    pub fn out_width(&self) -> usize {
        self.out
    }

    /// Input values per row.
    pub fn in_width(&self) -> usize {
        self.width
    }

    /// Panels of [`BLOCK`] output columns.
    pub fn blocks(&self) -> usize {
        self.out.div_ceil(BLOCK)
    }
}

/// `src` rounded to the nearest f16 (bit patterns).
fn halves(src: &[f32], dst: &mut [u16]) {
    assert_eq!(src.len(), dst.len());
    #[cfg(target_arch = "x86_64")]
    {
        // SAFETY: `pack` checked the CPU has AVX-512 (F and FP16); the lengths are equal.
        #[expect(unsafe_code, reason = "calling a function compiled for AVX-512")]
        unsafe {
            avx512::halves(src, dst)
        }
    }
}

/// Each of `x`'s values (`rows` rows of `width`, row-major) rounded to f16 and stored twice
/// in one word, the input [`multiply_add`] reads; `out` holds `x.len()` words.
///
/// # Panics
/// When `out` is shorter than `x`, or the CPU lacks AVX-512 FP16.
pub fn to_halves(x: &[f32], out: &mut [u32]) {
    assert!(out.len() >= x.len(), "to_halves: output too short");
    assert!(available(), "to_halves: the CPU lacks AVX-512 FP16");
    #[cfg(target_arch = "x86_64")]
    {
        // SAFETY: the CPU has AVX-512 F, BW and FP16 (just checked); `out` is long enough.
        #[expect(unsafe_code, reason = "calling a function compiled for AVX-512")]
        unsafe {
            avx512::to_halves(x, out)
        }
    }
}

/// `out[r·stride + c − 64·blocks.start] += Σₖ x[r, k]·w[c, k]` for the `rows` rows of `x` (as
/// [`to_halves`] wrote them, `w.in_width()` wide) and every output column `c` of the panels
/// `blocks`, with products and partial sums in f16.
///
/// # Panics
/// When `x` or `out` is too short, `blocks` is past the matrix's panels, or the CPU lacks
/// AVX-512 FP16.
pub fn multiply_add(
    w: &F16Panels,
    x: &[u32],
    rows: usize,
    blocks: Range<usize>,
    out: &mut [f32],
    stride: usize,
) {
    if !crate::check_product(w.out, &blocks, rows, (x.len(), w.width), out.len(), stride) {
        return;
    }
    assert!(available(), "f16::multiply_add: the CPU lacks AVX-512 FP16");
    #[cfg(target_arch = "x86_64")]
    {
        // SAFETY: the CPU has AVX-512 F, BW and FP16 (just checked), and the lengths the kernel
        // relies on were asserted above.
        #[expect(unsafe_code, reason = "calling a function compiled for AVX-512 FP16")]
        unsafe {
            avx512::multiply_add(w, x, rows, blocks, out, stride)
        };
    }
}

#[cfg(target_arch = "x86_64")]
mod avx512 {
    #![expect(unsafe_code, reason = "AVX-512 FP16 intrinsics on raw pointers")]

    use std::arch::x86_64::*;
    use std::ops::Range;

    use super::{BLOCK, F16Panels, ROWS, SUM};

    const ROUND: i32 = _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC;

    /// # Safety
    /// The CPU has AVX-512 F; `src` and `dst` have the same length.
    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn halves(src: &[f32], dst: &mut [u16]) {
        for (s, d) in src.chunks(16).zip(dst.chunks_mut(16)) {
            let mask: __mmask16 = if s.len() == 16 {
                u16::MAX
            } else {
                (1u16 << s.len()) - 1
            };
            // SAFETY: the masked lanes are within both chunks.
            unsafe {
                let v = _mm512_maskz_loadu_ps(mask, s.as_ptr());
                let h = _mm512_cvtps_ph::<ROUND>(v);
                let mut lanes = [0u16; 16];
                _mm256_storeu_si256(lanes.as_mut_ptr().cast(), h);
                d.copy_from_slice(&lanes[..d.len()]);
            }
        }
    }

    /// # Safety
    /// The CPU has AVX-512 F; `out` is at least as long as `x`.
    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn to_halves(x: &[f32], out: &mut [u32]) {
        for (s, d) in x.chunks(16).zip(out.chunks_mut(16)) {
            let n = s.len();
            let mask: __mmask16 = if n == 16 { u16::MAX } else { (1u16 << n) - 1 };
            // SAFETY: the masked lanes are within both chunks (`d` is at least `n` long).
            unsafe {
                let v = _mm512_maskz_loadu_ps(mask, s.as_ptr());
                let h = _mm512_cvtepu16_epi32(_mm512_cvtps_ph::<ROUND>(v));
                let twice = _mm512_or_si512(h, _mm512_slli_epi32::<16>(h));
                _mm512_mask_storeu_epi32(d.as_mut_ptr().cast(), mask, twice);
            }
        }
    }

    /// # Safety
    /// The CPU has AVX-512 F, BW and FP16; the lengths `super::multiply_add` asserts hold.
    #[target_feature(enable = "avx512f,avx512bw,avx512fp16")]
    pub(super) unsafe fn multiply_add(
        w: &F16Panels,
        x: &[u32],
        rows: usize,
        blocks: Range<usize>,
        out: &mut [f32],
        stride: usize,
    ) {
        let width = w.width;
        let (xp, op) = (x.as_ptr(), out.as_mut_ptr());
        for b in blocks.clone() {
            let valid = crate::panel_width(w.out, b);
            let col0 = (b - blocks.start) * BLOCK;
            let mut k0 = 0;
            while k0 < width {
                let depth = SUM.min(width - k0);
                // SAFETY (every call below): panel `b` is `width·BLOCK` halves inside `w.data`
                // and positions k0..k0+depth of it are inside; row `r` of `x` is `width` words
                // from `r·width`, and `rows·width ≤ x.len()`; the tile writes `valid` columns
                // of its rows from `r·stride + col0`, which the caller checked fit `out`.
                unsafe {
                    let panel = w.data.as_ptr().add((b * width + k0) * BLOCK);
                    let at = |r: usize| (xp.add(r * width + k0), op.add(r * stride + col0));
                    let mut r = 0;
                    while r + ROWS <= rows {
                        let (xr, o) = at(r);
                        tile::<ROWS>(xr, width, depth, panel, o, stride, valid);
                        r += ROWS;
                    }
                    let (xr, o) = at(r);
                    match rows - r {
                        0 => {}
                        1 => tile::<1>(xr, width, depth, panel, o, stride, valid),
                        2 => tile::<2>(xr, width, depth, panel, o, stride, valid),
                        3 => tile::<3>(xr, width, depth, panel, o, stride, valid),
                        4 => tile::<4>(xr, width, depth, panel, o, stride, valid),
                        5 => tile::<5>(xr, width, depth, panel, o, stride, valid),
                        6 => tile::<6>(xr, width, depth, panel, o, stride, valid),
                        _ => tile::<7>(xr, width, depth, panel, o, stride, valid),
                    }
                }
                k0 += depth;
            }
        }
    }

    /// `M` rows of `x` (`x_stride` words apart) over `depth` (≤ [`SUM`]) positions of one
    /// panel, summed in f16 and added to `M` rows of `out` (`valid` columns each) in f32.
    #[target_feature(enable = "avx512f,avx512bw,avx512fp16")]
    #[inline]
    unsafe fn tile<const M: usize>(
        x: *const u32,
        x_stride: usize,
        depth: usize,
        panel: *const u16,
        out: *mut f32,
        stride: usize,
        valid: usize,
    ) {
        let mut acc = [[_mm512_setzero_ph(); 2]; M];
        // SAFETY: the caller's bounds (see `multiply_add`).
        unsafe {
            for k in 0..depth {
                let wk = panel.add(k * BLOCK);
                let w0 = _mm512_castsi512_ph(_mm512_loadu_si512(wk.cast()));
                let w1 = _mm512_castsi512_ph(_mm512_loadu_si512(wk.add(32).cast()));
                for (m, a) in acc.iter_mut().enumerate() {
                    let xv =
                        _mm512_castsi512_ph(_mm512_set1_epi32(*x.add(m * x_stride + k) as i32));
                    a[0] = _mm512_fmadd_ph(xv, w0, a[0]);
                    a[1] = _mm512_fmadd_ph(xv, w1, a[1]);
                }
            }
            // Each 32-lane sum is two 16-lane f32 vectors: columns 0-15 in its low half.
            let mut wide = [[_mm512_setzero_ps(); 4]; M];
            for (a, o) in acc.iter().zip(wide.iter_mut()) {
                for (h, pair) in a.iter().zip(o.chunks_exact_mut(2)) {
                    let bits = _mm512_castph_si512(*h);
                    pair[0] = _mm512_cvtph_ps(_mm512_extracti64x4_epi64::<0>(bits));
                    pair[1] = _mm512_cvtph_ps(_mm512_extracti64x4_epi64::<1>(bits));
                }
            }
            crate::avx512::add_tile(&wide, out, stride, valid);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::values;

    /// Products against the definition in f64, within what f16 inputs and partial sums allow:
    /// ~2⁻¹¹ of each product's size per term, growing with the square root of the terms.
    fn check(rows: usize, out: usize, width: usize) {
        let w = values(out * width, out as u32);
        let x = values(rows * width, rows as u32 + 7);
        let packed = F16Panels::pack(&w, out, width);
        let mut halves = vec![0u32; x.len()];
        to_halves(&x, &mut halves);
        let mut got = vec![0.5f32; rows * out];
        multiply_add(&packed, &halves, rows, 0..packed.blocks(), &mut got, out);
        for r in 0..rows {
            for c in 0..out {
                let want: f64 = 0.5
                    + (0..width)
                        .map(|k| f64::from(x[r * width + k]) * f64::from(w[c * width + k]))
                        .sum::<f64>();
                let g = f64::from(got[r * out + c]);
                assert!(
                    (g - want).abs() <= 2e-3 * (width as f64).sqrt(),
                    "rows {rows} out {out} width {width}: [{r},{c}] {g} vs {want}"
                );
            }
        }
    }

    #[test]
    fn products_match_the_definition_within_half_precision() {
        if !available() {
            return;
        }
        for (rows, out, width) in [
            (1, 64, 384),
            (12, 1152, 384),
            (13, 384, 1536),
            (25, 100, 33),
            (2, 17, 1),
            (31, 130, 300),
        ] {
            check(rows, out, width);
        }
    }

    #[test]
    fn rounding_to_half_precision_keeps_eleven_bits_and_doubles_each_value() {
        if !available() {
            return;
        }
        let x = [1.0f32, -2.5, 0.1, 65504.0, 3.0e-5];
        let mut out = [0u32; 5];
        to_halves(&x, &mut out);
        // 1.0 = 0x3C00, -2.5 = 0xC100, 0.1 ≈ 0x2E66, 65504 = 0x7BFF (largest), 3e-5 subnormal.
        let want = [0x3C00u32, 0xC100, 0x2E66, 0x7BFF, 0x01F7];
        for (o, w) in out.iter().zip(want) {
            assert_eq!(*o, w | (w << 16), "{o:#x} vs {w:#x}");
        }
    }

    #[test]
    fn a_range_of_panels_writes_only_its_columns() {
        if !available() {
            return;
        }
        let (rows, out, width) = (3, 200, 40);
        let packed = F16Panels::pack(&values(out * width, 3), out, width);
        let mut x = vec![0u32; rows * width];
        to_halves(&values(rows * width, 4), &mut x);
        let mut whole = vec![0f32; rows * out];
        multiply_add(&packed, &x, rows, 0..packed.blocks(), &mut whole, out);
        let mut part = vec![0f32; rows * 136];
        multiply_add(&packed, &x, rows, 1..4, &mut part, 136);
        for r in 0..rows {
            assert_eq!(
                &part[r * 136..(r + 1) * 136],
                &whole[r * out + 64..(r + 1) * out]
            );
        }
    }
}
