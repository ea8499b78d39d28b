//! Matrix products in bfloat16 with f32 accumulation, for CPUs with AVX-512 BF16
//! (`vdpbf16ps`: sixteen f32 lanes, each adding the products of a pair of bf16 values).
//!
//! A linear layer's weights `[out, in]` are packed once ([`Bf16Matrix::pack`]) into panels of
//! [`BLOCK`] output columns: for each pair of input positions, the 64 columns' two weights side
//! by side, so a step of the inner loop reads 256 contiguous bytes. Activations are rounded to
//! bf16 per pass ([`to_pairs`]), two input positions per `u32`. Each step broadcasts one row's
//! pair and multiplies it into four 16-lane accumulators; six rows at a time keep 24
//! accumulators in registers. Products and sums are f32; only the operands are rounded (8 bits
//! of mantissa), which is the accuracy cost `cortex-ai` measures against sentence-transformers.
//!
//! Where the CPU lacks the instructions the same products run as plain loops (correct, slow):
//! callers check [`available`] and keep f32 weights instead.

use std::ops::Range;

/// Output columns per packed panel (the same as [`crate::panels::BLOCK`]).
pub const BLOCK: usize = crate::PANEL;

/// Rows multiplied together by the AVX-512 kernel.
const ROWS: usize = 6;

/// Whether this CPU runs the bf16 products natively.
pub fn available() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::arch::is_x86_feature_detected!("avx512f")
            && std::arch::is_x86_feature_detected!("avx512bw")
            && std::arch::is_x86_feature_detected!("avx512bf16")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// `x` rounded to the nearest bf16 (ties to even), as its 16 bits.
#[inline(always)]
pub fn bf16_bits(x: f32) -> u16 {
    let b = x.to_bits();
    if x.is_nan() {
        return ((b >> 16) | 0x40) as u16;
    }
    (b.wrapping_add(0x7FFF + ((b >> 16) & 1)) >> 16) as u16
}

/// The f32 a bf16 stands for.
#[inline(always)]
pub fn bf16_value(bits: u16) -> f32 {
    f32::from_bits(u32::from(bits) << 16)
}

#[inline(always)]
fn pair(lo: f32, hi: f32) -> u32 {
    u32::from(bf16_bits(lo)) | (u32::from(bf16_bits(hi)) << 16)
}

simd_fn! {
    /// Rounds the rows of `x` (`cols` wide) to bf16 pairs: `out[r·⌈cols/2⌉ + p]` holds
    /// `x[r, 2p]` in its low half and `x[r, 2p+1]` (0 past the end of an odd row) in its high.
    fn to_pairs(x: &[f32], cols: usize, out: &mut [u32]) {
        if cols == 0 {
            return;
        }
        let pairs = cols.div_ceil(2);
        for (row, o) in x.chunks_exact(cols).zip(out.chunks_exact_mut(pairs)) {
            let even = cols - cols % 2;
            for (o, two) in o.iter_mut().zip(row[..even].chunks_exact(2)) {
                *o = pair(two[0], two[1]);
            }
            if cols % 2 == 1 {
                o[pairs - 1] = pair(row[cols - 1], 0.0);
            }
        }
    }
}

/// A linear layer's weight matrix (`out` rows of `in` values, PyTorch's layout) in bf16,
/// packed in panels of [`BLOCK`] rows for [`multiply_add`].
pub struct Bf16Matrix {
    out: usize,
    width: usize,
    pairs: usize,
    data: Vec<u32>,
}

impl Bf16Matrix {
    /// Packs row-major `w` of `out` rows, each `width` wide.
    pub fn pack(w: &[f32], out: usize, width: usize) -> Self {
        assert_eq!(w.len(), out * width, "Bf16Matrix::pack: mismatched shape");
        let pairs = width.div_ceil(2);
        let blocks = out.div_ceil(BLOCK);
        let mut data = vec![0u32; blocks * pairs * BLOCK];
        for (r, row) in w.chunks_exact(width.max(1)).enumerate().take(out) {
            let (block, lane) = (r / BLOCK, r % BLOCK);
            for p in 0..pairs {
                let hi = row.get(2 * p + 1).copied().unwrap_or(0.0);
                data[(block * pairs + p) * BLOCK + lane] = pair(row[2 * p], hi);
            }
        }
        Self {
            out,
            width,
            pairs,
            data,
        }
    }

    /// Output columns (the weight's rows).
    pub fn out_width(&self) -> usize {
        self.out
    }

    /// Input values per row.
    pub fn in_width(&self) -> usize {
        self.width
    }

    /// `u32` pairs per input row, as [`to_pairs`] writes them.
    pub fn pairs(&self) -> usize {
        self.pairs
    }

    /// Panels of [`BLOCK`] output columns.
    pub fn blocks(&self) -> usize {
        self.out.div_ceil(BLOCK)
    }

    /// Output columns of panel `b`.
    fn valid(&self, b: usize) -> usize {
        crate::panel_width(self.out, b)
    }
}

/// `out[r·stride + c − 64·blocks.start] += Σₖ x[r, k]·w[c, k]` for the `rows` rows of `x`
/// (bf16 pairs, [`to_pairs`]) and every output column `c` of the panels `blocks`.
///
/// # Panics
/// When `x` or `out` is too short for `rows` rows, or `blocks` is past the matrix's panels.
pub fn multiply_add(
    w: &Bf16Matrix,
    x: &[u32],
    rows: usize,
    blocks: Range<usize>,
    out: &mut [f32],
    stride: usize,
) {
    if !crate::check_product(w.out, &blocks, rows, (x.len(), w.pairs), out.len(), stride) {
        return;
    }
    #[cfg(target_arch = "x86_64")]
    if available() {
        // SAFETY: the CPU has the features `avx512::multiply_add` is compiled for (just
        // checked), and the lengths it relies on were asserted above.
        #[expect(unsafe_code, reason = "calling a function compiled for AVX-512 BF16")]
        unsafe {
            avx512::multiply_add(w, x, rows, blocks, out, stride)
        };
        return;
    }
    for b in blocks.clone() {
        let panel = &w.data[b * w.pairs * BLOCK..(b + 1) * w.pairs * BLOCK];
        let col0 = (b - blocks.start) * BLOCK;
        for r in 0..rows {
            let xr = &x[r * w.pairs..(r + 1) * w.pairs];
            for lane in 0..w.valid(b) {
                let mut acc = 0f32;
                for (p, &xp) in xr.iter().enumerate() {
                    let wp = panel[p * BLOCK + lane];
                    acc += bf16_value(xp as u16) * bf16_value(wp as u16)
                        + bf16_value((xp >> 16) as u16) * bf16_value((wp >> 16) as u16);
                }
                out[r * stride + col0 + lane] += acc;
            }
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod avx512 {
    #![expect(unsafe_code, reason = "AVX-512 BF16 intrinsics on raw pointers")]

    use std::arch::x86_64::*;
    use std::ops::Range;

    use super::{BLOCK, Bf16Matrix, ROWS};

    /// # Safety
    /// The CPU has AVX-512 F, BW and BF16; the lengths `super::multiply_add` asserts hold.
    #[target_feature(enable = "avx512f,avx512bw,avx512bf16")]
    pub(super) unsafe fn multiply_add(
        w: &Bf16Matrix,
        x: &[u32],
        rows: usize,
        blocks: Range<usize>,
        out: &mut [f32],
        stride: usize,
    ) {
        let pairs = w.pairs;
        for b in blocks.clone() {
            let valid = w.valid(b);
            let col0 = (b - blocks.start) * BLOCK;
            // SAFETY (every call below): panel `b` is `pairs·BLOCK` values inside `w.data`;
            // row `r` of `x` is `pairs` values from `r·pairs`, and `rows·pairs ≤ x.len()`; the
            // tile writes `valid` columns of its rows from `r·stride + col0`, which the caller
            // checked fit `out`.
            unsafe {
                let panel = w.data.as_ptr().add(b * pairs * BLOCK);
                let mut r = 0;
                while r + ROWS <= rows {
                    tile::<ROWS>(
                        x.as_ptr().add(r * pairs),
                        pairs,
                        panel,
                        out.as_mut_ptr().add(r * stride + col0),
                        stride,
                        valid,
                    );
                    r += ROWS;
                }
                let (xr, o) = (
                    x.as_ptr().add(r * pairs),
                    out.as_mut_ptr().add(r * stride + col0),
                );
                match rows - r {
                    0 => {}
                    1 => tile::<1>(xr, pairs, panel, o, stride, valid),
                    2 => tile::<2>(xr, pairs, panel, o, stride, valid),
                    3 => tile::<3>(xr, pairs, panel, o, stride, valid),
                    4 => tile::<4>(xr, pairs, panel, o, stride, valid),
                    _ => tile::<5>(xr, pairs, panel, o, stride, valid),
                }
            }
        }
    }

    /// `M` rows of `x` times one panel, added to `M` rows of `out` (`valid` columns each).
    #[target_feature(enable = "avx512f,avx512bw,avx512bf16")]
    #[inline]
    unsafe fn tile<const M: usize>(
        x: *const u32,
        pairs: usize,
        panel: *const u32,
        out: *mut f32,
        stride: usize,
        valid: usize,
    ) {
        let mut acc = [[_mm512_setzero_ps(); 4]; M];
        // SAFETY: the caller's bounds (see `multiply_add`); `__m512i` and `__m512bh` are both
        // 64 bytes of plain data, so reinterpreting one as the other is sound.
        unsafe {
            for p in 0..pairs {
                let wp = panel.add(p * BLOCK);
                let w0: __m512bh = std::mem::transmute(_mm512_loadu_si512(wp.cast()));
                let w1: __m512bh = std::mem::transmute(_mm512_loadu_si512(wp.add(16).cast()));
                let w2: __m512bh = std::mem::transmute(_mm512_loadu_si512(wp.add(32).cast()));
                let w3: __m512bh = std::mem::transmute(_mm512_loadu_si512(wp.add(48).cast()));
                for (m, a) in acc.iter_mut().enumerate() {
                    let xv: __m512bh =
                        std::mem::transmute(_mm512_set1_epi32(*x.add(m * pairs + p) as i32));
                    a[0] = _mm512_dpbf16_ps(a[0], xv, w0);
                    a[1] = _mm512_dpbf16_ps(a[1], xv, w1);
                    a[2] = _mm512_dpbf16_ps(a[2], xv, w2);
                    a[3] = _mm512_dpbf16_ps(a[3], xv, w3);
                }
            }
            crate::avx512::add_tile(&acc, out, stride, valid);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::values;

    #[test]
    fn rounding_is_to_nearest_even() {
        assert_eq!(bf16_value(bf16_bits(1.0)), 1.0);
        assert_eq!(bf16_value(bf16_bits(-2.5)), -2.5);
        // 1 + 2⁻⁸ is halfway between 1 and 1 + 2⁻⁷: ties go to the even mantissa, 1.
        assert_eq!(bf16_value(bf16_bits(1.0 + 1.0 / 256.0)), 1.0);
        // Just above halfway rounds up.
        assert_eq!(
            bf16_value(bf16_bits(1.0 + 1.0 / 256.0 + 1e-6)),
            1.0 + 1.0 / 128.0
        );
        assert!(bf16_value(bf16_bits(f32::NAN)).is_nan());
        for x in values(1000, 7) {
            let r = bf16_value(bf16_bits(x));
            assert!((r - x).abs() <= x.abs() / 256.0, "{x} rounded to {r}");
        }
    }

    /// Every shape the encoder meets and the awkward ones: rows that are not a multiple of the
    /// kernel's six, output widths that end inside a panel, odd input widths.
    #[test]
    fn products_match_f32_products_of_the_rounded_operands() {
        for (rows, out, width) in [
            (1, 64, 384),
            (7, 1152, 384),
            (13, 384, 1536),
            (6, 100, 33),
            (2, 17, 1),
            (31, 130, 65),
        ] {
            let w = values(out * width, out as u32);
            let x = values(rows * width, rows as u32 + 99);
            let packed = Bf16Matrix::pack(&w, out, width);
            let mut pairs = vec![0u32; rows * packed.pairs()];
            to_pairs(&x, width, &mut pairs);
            let mut got = vec![0.5f32; rows * out];
            multiply_add(&packed, &pairs, rows, 0..packed.blocks(), &mut got, out);
            let round = |v: f32| bf16_value(bf16_bits(v));
            for r in 0..rows {
                for c in 0..out {
                    let want: f64 = 0.5
                        + (0..width)
                            .map(|k| {
                                f64::from(round(x[r * width + k]))
                                    * f64::from(round(w[c * width + k]))
                            })
                            .sum::<f64>();
                    let g = f64::from(got[r * out + c]);
                    assert!(
                        (g - want).abs() <= 1e-4 * (width as f64).sqrt(),
                        "rows {rows} out {out} width {width}: [{r},{c}] {g} vs {want}"
                    );
                }
            }
        }
    }

    #[test]
    fn a_range_of_panels_writes_only_its_columns() {
        let (rows, out, width) = (3, 200, 40);
        let w = values(out * width, 3);
        let x = values(rows * width, 4);
        let packed = Bf16Matrix::pack(&w, out, width);
        let mut pairs = vec![0u32; rows * packed.pairs()];
        to_pairs(&x, width, &mut pairs);
        let mut whole = vec![0f32; rows * out];
        multiply_add(&packed, &pairs, rows, 0..packed.blocks(), &mut whole, out);
        // Panels 1..4 hold columns 64..200 (136 of them) into a buffer of their own width.
        let mut part = vec![0f32; rows * 136];
        multiply_add(&packed, &pairs, rows, 1..4, &mut part, 136);
        for r in 0..rows {
            assert_eq!(
                &part[r * 136..(r + 1) * 136],
                &whole[r * out + 64..(r + 1) * out]
            );
        }
    }
}
