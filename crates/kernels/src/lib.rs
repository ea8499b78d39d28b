//! Numeric kernels as plain loops the compiler vectorises, compiled three times: for AVX-512,
//! for AVX2 + FMA (chosen at run time, best first, where the CPU has them) and for the
//! baseline target. Two users: the text encoder's element-wise steps (GELU, softmax,
//! LayerNorm) and linear layers ([`panels`] in f32, [`bf16`] in bfloat16), and the embedded
//! store's vector scan over int8-quantised rows ([`quantize`], [`scores_i8`]).
//!
//! `exp` and `erf` are polynomial approximations (Cephes' `expf`, Abramowitz–Stegun 7.1.26)
//! with no branches, so a loop over them vectorises; their errors (≈ 1e-7 relative and
//! ≤ 1.5e-7 absolute) are below what f32 accumulation in the matrix products already adds.

/// Defines `pub fn $name` that runs `$body` compiled for AVX-512 when the CPU has it, else for
/// AVX2 + FMA, else for the baseline target.
macro_rules! simd_fn {
    ($(#[$doc:meta])* fn $name:ident($($arg:ident: $ty:ty),*) $body:block) => {
        $(#[$doc])*
        pub fn $name($($arg: $ty),*) {
            #[inline(always)]
            fn body($($arg: $ty),*) $body
            #[cfg(target_arch = "x86_64")]
            {
                #[target_feature(enable = "avx512f,avx512vl,avx512dq,avx512bw,avx2,fma")]
                fn wide($($arg: $ty),*) {
                    body($($arg),*)
                }
                if std::arch::is_x86_feature_detected!("avx512f")
                    && std::arch::is_x86_feature_detected!("avx512vl")
                    && std::arch::is_x86_feature_detected!("avx512dq")
                    && std::arch::is_x86_feature_detected!("avx512bw")
                    && std::arch::is_x86_feature_detected!("avx2")
                    && std::arch::is_x86_feature_detected!("fma")
                {
                    // SAFETY: the features `wide` is compiled for were just detected.
                    #[expect(unsafe_code, reason = "calling a function compiled for AVX-512")]
                    return unsafe { wide($($arg),*) };
                }
                #[target_feature(enable = "avx2,fma")]
                fn avx2($($arg: $ty),*) {
                    body($($arg),*)
                }
                if std::arch::is_x86_feature_detected!("avx2")
                    && std::arch::is_x86_feature_detected!("fma")
                {
                    // SAFETY: the features `avx2` is compiled for were just detected.
                    #[expect(unsafe_code, reason = "calling a function compiled for AVX2")]
                    return unsafe { avx2($($arg),*) };
                }
            }
            body($($arg),*)
        }
    };
}

pub mod bf16;
pub mod f16;
pub mod panels;

/// Output columns per packed panel, in both matrix kernels ([`bf16`], [`panels`]).
const PANEL: usize = 64;

/// Output columns of panel `b` of a matrix `out` columns wide.
fn panel_width(out: usize, b: usize) -> usize {
    PANEL.min(out - b * PANEL)
}

/// The checks both matrix kernels make before `multiply_add` runs: `false` when there is
/// nothing to do (no rows or no panels).
///
/// # Panics
/// When `blocks` is past the matrix's panels, `x` is shorter than `rows` rows of `x_row`
/// values, or `out` is too short for `rows` rows `stride` apart of the panels' columns.
fn check_product(
    out_width: usize,
    blocks: &std::ops::Range<usize>,
    rows: usize,
    (x_len, x_row): (usize, usize),
    out_len: usize,
    stride: usize,
) -> bool {
    if rows == 0 || blocks.is_empty() {
        return false;
    }
    assert!(
        blocks.end <= out_width.div_ceil(PANEL),
        "multiply_add: no such panel"
    );
    let last = blocks.end - 1;
    let width = (last - blocks.start) * PANEL + panel_width(out_width, last);
    assert!(
        x_len >= rows * x_row && width <= stride && out_len >= (rows - 1) * stride + width,
        "multiply_add: buffers too short"
    );
    true
}

/// What the AVX-512 matrix kernels ([`bf16`], [`panels`]) share.
#[cfg(target_arch = "x86_64")]
mod avx512 {
    #![expect(unsafe_code, reason = "AVX-512 intrinsics on raw pointers")]

    use std::arch::x86_64::*;

    /// Adds a tile's accumulators (`M` rows of four 16-lane vectors) to `M` rows of `out`,
    /// `stride` apart, `valid` (≤ 64) columns each.
    ///
    /// # Safety
    /// The CPU has AVX-512 F; `out` addresses `valid` writable values at each of the `M` rows.
    #[target_feature(enable = "avx512f")]
    #[inline]
    pub(crate) unsafe fn add_tile<const M: usize>(
        acc: &[[__m512; 4]; M],
        out: *mut f32,
        stride: usize,
        valid: usize,
    ) {
        for (m, a) in acc.iter().enumerate() {
            for (v, &sum) in a.iter().enumerate() {
                let first = v * 16;
                if first >= valid {
                    break;
                }
                let n = (valid - first).min(16);
                let mask: __mmask16 = if n == 16 { u16::MAX } else { (1u16 << n) - 1 };
                // SAFETY: the caller's bounds: row `m`'s columns first..first+n are in `out`.
                unsafe {
                    let o = out.add(m * stride + first);
                    let now = _mm512_maskz_loadu_ps(mask, o);
                    _mm512_mask_storeu_ps(o, mask, _mm512_add_ps(now, sum));
                }
            }
        }
    }
}

#[cfg(test)]
mod testing {
    /// A deterministic spread of values in [-1, 1).
    pub(crate) fn values(n: usize, seed: u32) -> Vec<f32> {
        let mut s = seed.wrapping_mul(2_654_435_761).max(1);
        (0..n)
            .map(|_| {
                s ^= s << 13;
                s ^= s >> 17;
                s ^= s << 5;
                (s as f32 / u32::MAX as f32) * 2.0 - 1.0
            })
            .collect()
    }
}

/// e^x: 0 below -87.3 (where f32 runs out of normal numbers), capped above 88.3.
#[inline(always)]
pub fn exp(x: f32) -> f32 {
    const LOG2E: f32 = std::f32::consts::LOG2_E;
    const LN2_HI: f32 = 0.693_359_4;
    const LN2_LO: f32 = -2.121_944_4e-4;
    // 1.5·2²³: adding it rounds to an integer held in the low mantissa bits.
    const MAGIC: f32 = 12_582_912.0;
    let underflow = x < -87.3;
    let x = x.clamp(-87.3, 88.3);
    let t = x * LOG2E + MAGIC;
    let n = t - MAGIC;
    let r = x - n * LN2_HI - n * LN2_LO;
    let mut p = 1.987_569_2e-4_f32;
    p = p.mul_add(r, 1.398_2e-3);
    p = p.mul_add(r, 8.333_452e-3);
    p = p.mul_add(r, 4.166_579_6e-2);
    p = p.mul_add(r, 1.666_666_5e-1);
    p = p.mul_add(r, 0.5);
    let e = p.mul_add(r * r, r + 1.0);
    // 2ⁿ from the exponent bits: t's bits are MAGIC's plus n, and n is in [-126, 127].
    let biased = t.to_bits().wrapping_sub(MAGIC.to_bits()).wrapping_add(127);
    let scale = f32::from_bits(biased << 23);
    if underflow { 0.0 } else { e * scale }
}

/// erf(x), absolute error ≤ 1.5e-7.
#[inline(always)]
pub fn erf(x: f32) -> f32 {
    const P: f32 = 0.327_591_1;
    const A: [f32; 5] = [
        0.254_829_6,
        -0.284_496_74,
        1.421_413_8,
        -1.453_152_1,
        1.061_405_4,
    ];
    let a = x.abs();
    let t = 1.0 / P.mul_add(a, 1.0);
    let mut poly = A[4];
    poly = poly.mul_add(t, A[3]);
    poly = poly.mul_add(t, A[2]);
    poly = poly.mul_add(t, A[1]);
    poly = poly.mul_add(t, A[0]);
    let y = 1.0 - poly * t * exp(-a * a);
    y.copysign(x)
}

/// Σ xs with sixteen lane accumulators: a single running sum is a dependency chain the
/// compiler may not reorder, so it would not vectorise.
#[inline(always)]
fn sum(xs: &[f32]) -> f32 {
    let mut acc = [0f32; 16];
    let chunks = xs.chunks_exact(16);
    let rest = chunks.remainder();
    for c in chunks {
        for (a, v) in acc.iter_mut().zip(c) {
            *a += v;
        }
    }
    acc.iter().sum::<f32>() + rest.iter().sum::<f32>()
}

/// The largest of xs (−∞ when empty), with lane accumulators as in [`sum`].
#[inline(always)]
fn max(xs: &[f32]) -> f32 {
    let mut acc = [f32::NEG_INFINITY; 16];
    let chunks = xs.chunks_exact(16);
    let rest = chunks.remainder();
    for c in chunks {
        for (a, &v) in acc.iter_mut().zip(c) {
            *a = if v > *a { v } else { *a };
        }
    }
    acc.iter()
        .chain(rest)
        .fold(f32::NEG_INFINITY, |m, &v| m.max(v))
}

simd_fn! {
    /// `x ← x·Φ(x)`, BERT's exact (erf) GELU, in place.
    fn gelu(xs: &mut [f32]) {
        const FRAC_1_SQRT_2: f32 = std::f32::consts::FRAC_1_SQRT_2;
        for x in xs.iter_mut() {
            let v = *x;
            *x = 0.5 * v * (1.0 + erf(v * FRAC_1_SQRT_2));
        }
    }
}

simd_fn! {
    /// Row-wise softmax of a row-major matrix `cols` wide, in place.
    fn softmax_rows(xs: &mut [f32], cols: usize) {
        for row in xs.chunks_exact_mut(cols) {
            let top = max(row);
            for v in row.iter_mut() {
                *v = exp(*v - top);
            }
            let inv = 1.0 / sum(row);
            for v in row.iter_mut() {
                *v *= inv;
            }
        }
    }
}

simd_fn! {
    /// `x ← LayerNorm(x + residual)` row by row (`gamma.len()` wide); `residual` may be empty.
    fn add_layer_norm(xs: &mut [f32], residual: &[f32], gamma: &[f32], beta: &[f32], eps: f32) {
        let cols = gamma.len();
        if !residual.is_empty() {
            for (x, r) in xs.iter_mut().zip(residual) {
                *x += r;
            }
        }
        let n = cols as f32;
        for row in xs.chunks_exact_mut(cols) {
            let mean = sum(row) / n;
            for v in row.iter_mut() {
                *v -= mean;
            }
            let mut squares = [0f32; 16];
            for c in row.chunks_exact(16) {
                for (a, v) in squares.iter_mut().zip(c) {
                    *a += v * v;
                }
            }
            let tail: f32 = row.chunks_exact(16).remainder().iter().map(|v| v * v).sum();
            let inv = 1.0 / ((squares.iter().sum::<f32>() + tail) / n + eps).sqrt();
            for ((v, g), b) in row.iter_mut().zip(gamma).zip(beta) {
                *v = *v * inv * g + b;
            }
        }
    }
}

/// Appends the int8 codes of `row` to `codes` and returns their scale: `row[i] ≈ codes[i]·scale`
/// with `|row[i] − codes[i]·scale| ≤ scale / 2`. A zero row has scale 0.
pub fn quantize(row: &[f32], codes: &mut Vec<i8>) -> f32 {
    let top = row.iter().fold(0f32, |m, v| m.max(v.abs()));
    if top == 0.0 || !top.is_finite() {
        codes.extend(std::iter::repeat_n(0, row.len()));
        return 0.0;
    }
    let scale = top / 127.0;
    codes.extend(
        row.iter()
            .map(|v| (v / scale).round().clamp(-127.0, 127.0) as i8),
    );
    scale
}

simd_fn! {
    /// `out[r] = scales[r] · Σᵢ codes[r·d + i]·query[i]` for every row `r` of `codes` (`d` =
    /// `query.len()` wide): approximate dot products of the query with quantised rows.
    fn scores_i8(codes: &[i8], scales: &[f32], query: &[f32], out: &mut [f32]) {
        let d = query.len();
        if d == 0 {
            out.iter_mut().for_each(|o| *o = 0.0);
            return;
        }
        for ((row, scale), o) in codes.chunks_exact(d).zip(scales).zip(out.iter_mut()) {
            let mut acc = [0f32; 16];
            let chunks = row.chunks_exact(16).zip(query.chunks_exact(16));
            for (c, q) in chunks {
                for i in 0..16 {
                    acc[i] += f32::from(c[i]) * q[i];
                }
            }
            let tail = d - d % 16;
            let rest: f32 = row[tail..].iter().zip(&query[tail..]).map(|(&c, q)| f32::from(c) * q).sum();
            *o = (acc.iter().sum::<f32>() + rest) * scale;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exp_matches_the_standard_library() {
        let mut worst = 0f32;
        for i in -8_000..=8_000 {
            let x = i as f32 * 0.01;
            let want = x.exp();
            worst = worst.max(((exp(x) - want) / want).abs());
        }
        assert!(worst < 3e-7, "relative error {worst}");
        assert_eq!(exp(-1000.0), 0.0);
        assert!(exp(1000.0).is_finite() && exp(1000.0) > 1e38);
    }

    #[test]
    fn erf_matches_a_reference() {
        // erf values from a table (Abramowitz–Stegun 7.1).
        for (x, want) in [
            (0.0f32, 0.0f32),
            (0.5, 0.520_499_9),
            (1.0, 0.842_700_8),
            (2.0, 0.995_322_3),
            (-1.5, -0.966_105_1),
            (4.0, 0.999_999_98),
        ] {
            assert!((erf(x) - want).abs() < 2e-7, "erf({x}) = {}", erf(x));
        }
    }

    #[test]
    fn gelu_softmax_and_layer_norm_compute_their_definitions() {
        let mut xs = vec![-3.0, -1.0, 0.0, 0.5, 2.0];
        gelu(&mut xs);
        // x·Φ(x) from a table of Φ.
        let want = [-0.004_049_7, -0.158_655_3, 0.0, 0.345_731_4, 1.9545];
        for (g, w) in xs.iter().zip(want) {
            assert!((g - w).abs() < 1e-6, "{g} vs {w}");
        }

        let mut rows = vec![1.0, 2.0, 3.0, 1000.0, 1000.0, -1000.0];
        softmax_rows(&mut rows, 3);
        let e = [1f32.exp(), 2f32.exp(), 3f32.exp()];
        let s: f32 = e.iter().sum();
        for (g, w) in rows[..3].iter().zip(e.map(|v| v / s)) {
            assert!((g - w).abs() < 1e-6);
        }
        assert_eq!(rows[3..], [0.5, 0.5, 0.0]);

        let mut xs = vec![1.0, 2.0, 3.0, 4.0];
        add_layer_norm(
            &mut xs,
            &[1.0, 1.0, 1.0, 1.0],
            &[2.0, 2.0],
            &[0.5, 0.5],
            0.0,
        );
        // Rows (2, 3) and (4, 5): normalised to (-1, 1), scaled by 2, shifted by 0.5.
        assert_eq!(xs, [-1.5, 2.5, -1.5, 2.5]);
    }

    #[test]
    fn quantised_scores_stay_within_the_stated_bound() {
        let mut seed = 7u32;
        let mut next = || {
            seed = seed.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            (seed >> 8) as f32 / (1 << 24) as f32 - 0.5
        };
        let d = 37; // not a multiple of 16: the tail path counts too
        let rows: Vec<Vec<f32>> = (0..50).map(|_| (0..d).map(|_| next()).collect()).collect();
        let query: Vec<f32> = (0..d).map(|_| next()).collect();
        let (mut codes, mut scales) = (Vec::new(), Vec::new());
        for r in &rows {
            scales.push(quantize(r, &mut codes));
        }
        let mut out = vec![0.0; rows.len()];
        scores_i8(&codes, &scales, &query, &mut out);
        let l1: f32 = query.iter().map(|v| v.abs()).sum();
        for ((r, s), got) in rows.iter().zip(&scales).zip(&out) {
            let exact: f32 = r.iter().zip(&query).map(|(a, b)| a * b).sum();
            assert!(
                (got - exact).abs() <= l1 * s / 2.0 + 1e-5,
                "{got} vs {exact}"
            );
        }
        let mut zero = Vec::new();
        assert_eq!(quantize(&[0.0; 4], &mut zero), 0.0);
        assert_eq!(zero, [0; 4]);
    }
}
