//! f32 matrix products for the encoder's linear layers, on weights packed once.
//!
//! A layer's weights `[out, in]` (PyTorch's layout) are packed ([`Panels::pack`]) into panels of
//! [`BLOCK`] output columns: for each input position, the 64 columns' weights side by side, so a
//! step of the inner loop reads 256 contiguous bytes. Each step broadcasts one input value of a
//! row and multiplies it into four 16-lane accumulators; six rows at a time keep 24 accumulators
//! in registers, enough independent FMAs to fill both of a core's FMA units. Packing once at load
//! is what a general `gemm` cannot do (it packs the weights again on every call), and one kernel
//! serves a lone question's handful of rows as well as a batch's thousands.
//!
//! Where the CPU lacks AVX-512 the same products run as plain loops the compiler vectorises.

use std::ops::Range;

/// Output columns per packed panel.
pub const BLOCK: usize = crate::PANEL;

/// Rows multiplied together by the AVX-512 kernel.
const ROWS: usize = 6;

/// Input positions per pass over a panel: 128 positions of 64 columns are 32 KB, which stay
/// in a core's L1 cache while every tile of rows goes over them.
const DEPTH: usize = 128;

/// A linear layer's weight matrix (`out` rows of `width` values), packed in panels of
/// [`BLOCK`] rows for [`multiply_add`].
pub struct Panels {
    out: usize,
    width: usize,
    data: Vec<f32>,
}

impl Panels {
    /// Packs row-major `w` of `out` rows, each `width` wide.
    pub fn pack(w: &[f32], out: usize, width: usize) -> Self {
        assert_eq!(w.len(), out * width, "Panels::pack: mismatched shape");
        let mut data = vec![0f32; out.div_ceil(BLOCK) * width * BLOCK];
        if width > 0 {
            for (r, row) in w.chunks_exact(width).enumerate() {
                let (block, lane) = (r / BLOCK, r % BLOCK);
                for (k, &v) in row.iter().enumerate() {
                    data[(block * width + k) * BLOCK + lane] = v;
                }
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

    /// Output columns of panel `b`.
    fn valid(&self, b: usize) -> usize {
        crate::panel_width(self.out, b)
    }
}

/// `out[r·stride + c − 64·blocks.start] += Σₖ x[r, k]·w[c, k]` for the `rows` rows of `x`
/// (row-major, `w.in_width()` wide) and every output column `c` of the panels `blocks`.
///
/// # Panics
/// When `x` or `out` is too short for `rows` rows, or `blocks` is past the matrix's panels.
pub fn multiply_add(
    w: &Panels,
    x: &[f32],
    rows: usize,
    blocks: Range<usize>,
    out: &mut [f32],
    stride: usize,
) {
    if !crate::check_product(w.out, &blocks, rows, (x.len(), w.width), out.len(), stride) {
        return;
    }
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx512f") {
        // SAFETY: the CPU has AVX-512 F (just checked), and the lengths the kernel relies on
        // were asserted above.
        #[expect(unsafe_code, reason = "calling a function compiled for AVX-512")]
        unsafe {
            avx512::multiply_add(w, x, rows, blocks, out, stride)
        };
        return;
    }
    portable(w, x, rows, blocks, out, stride);
}

simd_fn! {
    /// [`multiply_add`] as plain loops over the same panels.
    fn portable(w: &Panels, x: &[f32], rows: usize, blocks: Range<usize>, out: &mut [f32], stride: usize) {
        for b in blocks.clone() {
            let panel = &w.data[b * w.width * BLOCK..(b + 1) * w.width * BLOCK];
            let col0 = (b - blocks.start) * BLOCK;
            let valid = w.valid(b);
            for r in 0..rows {
                let mut acc = [0f32; BLOCK];
                for (&xk, wk) in x[r * w.width..(r + 1) * w.width].iter().zip(panel.chunks_exact(BLOCK)) {
                    for (a, &v) in acc.iter_mut().zip(wk) {
                        *a = xk.mul_add(v, *a);
                    }
                }
                for (o, a) in out[r * stride + col0..][..valid].iter_mut().zip(acc) {
                    *o += a;
                }
            }
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod avx512 {
    #![expect(unsafe_code, reason = "AVX-512 intrinsics on raw pointers")]

    use std::arch::x86_64::*;
    use std::ops::Range;

    use super::{BLOCK, DEPTH, Panels, ROWS};

    /// # Safety
    /// The CPU has AVX-512 F; the lengths `super::multiply_add` asserts hold.
    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn multiply_add(
        w: &Panels,
        x: &[f32],
        rows: usize,
        blocks: Range<usize>,
        out: &mut [f32],
        stride: usize,
    ) {
        let width = w.width;
        let (xp, op) = (x.as_ptr(), out.as_mut_ptr());
        for b in blocks.clone() {
            let valid = w.valid(b);
            let col0 = (b - blocks.start) * BLOCK;
            let mut k0 = 0;
            while k0 < width {
                let depth = DEPTH.min(width - k0);
                // SAFETY (every call below): panel `b` is `width·BLOCK` values inside `w.data`
                // and positions k0..k0+depth of it are inside; row `r` of `x` is `width`
                // values from `r·width`, and `rows·width ≤ x.len()`; the tile writes `valid`
                // columns of its rows from `r·stride + col0`, which the caller checked fit
                // `out`.
                unsafe {
                    let panel = w.data.as_ptr().add((b * width + k0) * BLOCK);
                    let tile_at = |r: usize| (xp.add(r * width + k0), op.add(r * stride + col0));
                    let mut r = 0;
                    while r + ROWS <= rows {
                        let (xr, o) = tile_at(r);
                        tile::<ROWS>(xr, width, depth, panel, o, stride, valid);
                        r += ROWS;
                    }
                    let (xr, o) = tile_at(r);
                    match rows - r {
                        0 => {}
                        1 => tile::<1>(xr, width, depth, panel, o, stride, valid),
                        2 => tile::<2>(xr, width, depth, panel, o, stride, valid),
                        3 => tile::<3>(xr, width, depth, panel, o, stride, valid),
                        4 => tile::<4>(xr, width, depth, panel, o, stride, valid),
                        _ => tile::<5>(xr, width, depth, panel, o, stride, valid),
                    }
                }
                k0 += depth;
            }
        }
    }

    /// `M` rows of `x` (`x_stride` apart) over `depth` positions of one panel, added to `M`
    /// rows of `out` (`valid` columns each).
    #[target_feature(enable = "avx512f")]
    #[inline]
    unsafe fn tile<const M: usize>(
        x: *const f32,
        x_stride: usize,
        depth: usize,
        panel: *const f32,
        out: *mut f32,
        stride: usize,
        valid: usize,
    ) {
        let mut acc = [[_mm512_setzero_ps(); 4]; M];
        // SAFETY: the caller's bounds (see `multiply_add`).
        unsafe {
            for k in 0..depth {
                let wk = panel.add(k * BLOCK);
                let w0 = _mm512_loadu_ps(wk);
                let w1 = _mm512_loadu_ps(wk.add(16));
                let w2 = _mm512_loadu_ps(wk.add(32));
                let w3 = _mm512_loadu_ps(wk.add(48));
                for (m, a) in acc.iter_mut().enumerate() {
                    let xv = _mm512_set1_ps(*x.add(m * x_stride + k));
                    a[0] = _mm512_fmadd_ps(xv, w0, a[0]);
                    a[1] = _mm512_fmadd_ps(xv, w1, a[1]);
                    a[2] = _mm512_fmadd_ps(xv, w2, a[2]);
                    a[3] = _mm512_fmadd_ps(xv, w3, a[3]);
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

    fn check(rows: usize, out: usize, width: usize, run: impl Fn(&Panels, &[f32], &mut [f32])) {
        let w = values(out * width, out as u32);
        let x = values(rows * width, rows as u32 + 99);
        let packed = Panels::pack(&w, out, width);
        let mut got = vec![0.5f32; rows * out];
        run(&packed, &x, &mut got);
        for r in 0..rows {
            for c in 0..out {
                let want: f64 = 0.5
                    + (0..width)
                        .map(|k| f64::from(x[r * width + k]) * f64::from(w[c * width + k]))
                        .sum::<f64>();
                let g = f64::from(got[r * out + c]);
                assert!(
                    (g - want).abs() <= 1e-5 * (width as f64).sqrt(),
                    "rows {rows} out {out} width {width}: [{r},{c}] {g} vs {want}"
                );
            }
        }
    }

    /// The encoder's shapes and the awkward ones: rows not a multiple of six, output widths
    /// ending inside a panel, input widths that are not a multiple of the pass depth.
    #[test]
    fn products_match_the_definition_on_every_path() {
        for (rows, out, width) in [
            (1, 64, 384),
            (7, 1152, 384),
            (13, 384, 1536),
            (6, 100, 33),
            (2, 17, 1),
            (31, 130, 300),
        ] {
            check(rows, out, width, |w, x, o| {
                multiply_add(w, x, rows, 0..w.blocks(), o, out)
            });
            check(rows, out, width, |w, x, o| {
                portable(w, x, rows, 0..w.blocks(), o, out)
            });
        }
    }

    #[test]
    fn a_range_of_panels_writes_only_its_columns() {
        let (rows, out, width) = (3, 200, 40);
        let packed = Panels::pack(&values(out * width, 3), out, width);
        let x = values(rows * width, 4);
        let mut whole = vec![0f32; rows * out];
        multiply_add(&packed, &x, rows, 0..packed.blocks(), &mut whole, out);
        // Panels 1..4 hold columns 64..200 (136 of them) into a buffer of their own width.
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
