//! A BERT encoder forward pass on the CPU, written for throughput on packed batches.
//!
//! Sequences are not padded: the tokens of a whole batch are laid end to end in one
//! `[tokens, hidden]` matrix, so every linear layer is one large matrix product and attention
//! runs per sequence and head over exactly that sequence's tokens — no padding is computed and
//! no mask is needed. The linear layers' weights are packed once at load into panels of 64
//! output columns (`cortex_kernels::panels`: an AVX-512 kernel of six rows by 64 columns, the
//! same for a lone question's handful of rows and a batch's thousands); attention's two small
//! products go to `gemm`. Buffers are allocated once per batch and reused by every layer;
//! biases and residuals are folded into the products' accumulators, and the element-wise steps
//! (GELU, softmax, LayerNorm) are vectorised (`cortex-kernels`) and spread over the cores by
//! rayon.
//!
//! Weights are read from `model.safetensors` with candle. The linear layers are packed in the
//! precision the passes use and only in that one: f32 panels; at [`Precision::F16`] IEEE
//! half-precision panels (`cortex_kernels::f16`, AVX-512 FP16); at [`Precision::Bf16`]
//! bfloat16 pairs multiplied with AVX-512 BF16 dot products (`cortex_kernels::bf16`). Everything
//! else stays f32 (embeddings, attention, softmax, GELU, LayerNorm, pooling).

use std::collections::HashMap;

use candle_core::{Device, Tensor};
use gemm::Parallelism;
use rayon::prelude::*;

use crate::minilm::EmbedError;
use cortex_kernels as kernels;
use cortex_kernels::bf16::Bf16Matrix;
use cortex_kernels::f16::F16Panels;
use cortex_kernels::panels::Panels;

/// How a text's token states become its vector (sentence-transformers' `1_Pooling`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pooling {
    /// The mean of every token's state (all-MiniLM-L6-v2, most sentence-transformers).
    Mean,
    /// The `[CLS]` token's state (BGE, some retrieval models).
    Cls,
}

/// The shape of the model, from its `config.json`.
#[derive(Debug, Clone, serde::Deserialize)]
pub struct Config {
    pub hidden_size: usize,
    pub num_attention_heads: usize,
    pub num_hidden_layers: usize,
    pub intermediate_size: usize,
    pub max_position_embeddings: usize,
    pub vocab_size: usize,
    #[serde(default = "default_type_vocab")]
    pub type_vocab_size: usize,
    #[serde(default = "default_eps")]
    pub layer_norm_eps: f64,
    #[serde(default = "default_act")]
    pub hidden_act: String,
    #[serde(default = "default_position_kind")]
    pub position_embedding_type: String,
}

fn default_type_vocab() -> usize {
    2
}
fn default_eps() -> f64 {
    1e-12
}
fn default_act() -> String {
    "gelu".into()
}
fn default_position_kind() -> String {
    "absolute".into()
}

/// The number format of the linear layers' weights and of their inputs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Precision {
    /// f32 throughout (the reference).
    F32,
    /// Every pass's linear layers with weights and inputs rounded to bfloat16, products of
    /// pairs summed in f32 (`vdpbf16ps`). Needs a CPU with AVX-512 BF16
    /// ([`Precision::bf16_available`]). Faster than f32 where that instruction retires at the
    /// f32 FMA's rate (AMD Zen 5: 1.3× on documents, 2× on a lone question); on the Intel
    /// CPU measured it retires at half that rate and only a lone question gains, so `auto`
    /// prefers [`Precision::F16`] there.
    Bf16,
    /// Every pass's linear layers in IEEE half precision: weights and inputs rounded to f16,
    /// products and partial sums over 32 positions in f16, then summed in f32. Twice the
    /// products per instruction of f32 and half the bytes. Needs a CPU with AVX-512 FP16
    /// ([`Precision::f16_available`]).
    F16,
}

impl Precision {
    /// Whether this CPU runs [`Precision::Bf16`] natively.
    pub fn bf16_available() -> bool {
        kernels::bf16::available()
    }

    /// Whether this CPU runs [`Precision::F16`] natively.
    pub fn f16_available() -> bool {
        kernels::f16::available()
    }
}

/// A linear layer's `[out, in]` weight matrix, packed once at load in the one precision every
/// pass uses (an f32 copy next to an f16 one would be 42 MB nobody reads).
enum Weight {
    F32(Panels),
    Bf16(Bf16Matrix),
    F16(F16Panels),
}

impl Weight {
    fn new(w: Vec<f32>, out: usize, width: usize, precision: Precision) -> Self {
        match precision {
            Precision::F32 => Self::F32(Panels::pack(&w, out, width)),
            Precision::Bf16 => Self::Bf16(Bf16Matrix::pack(&w, out, width)),
            Precision::F16 => Self::F16(F16Panels::pack(&w, out, width)),
        }
    }

    /// `(out_width, in_width)`.
    fn shape(&self) -> (usize, usize) {
        match self {
            Self::F32(p) => (p.out_width(), p.in_width()),
            Self::Bf16(m) => (m.out_width(), m.in_width()),
            Self::F16(h) => (h.out_width(), h.in_width()),
        }
    }
}

struct Layer {
    /// Query, key and value projections stacked: `[3·hidden, hidden]`.
    qkv_w: Weight,
    qkv_b: Vec<f32>,
    attn_out_w: Weight,
    attn_out_b: Vec<f32>,
    attn_ln: (Vec<f32>, Vec<f32>),
    inter_w: Weight,
    inter_b: Vec<f32>,
    out_w: Weight,
    out_b: Vec<f32>,
    out_ln: (Vec<f32>, Vec<f32>),
}

pub struct Encoder {
    hidden: usize,
    heads: usize,
    intermediate: usize,
    eps: f32,
    max_positions: usize,
    vocab: usize,
    type_vocab: usize,
    word: Vec<f32>,
    position: Vec<f32>,
    token_type: Vec<f32>,
    embed_ln: (Vec<f32>, Vec<f32>),
    layers: Vec<Layer>,
    precision: Precision,
}

/// Rows per task for the element-wise steps.
const ROWS_PER_TASK: usize = 32;

struct Weights {
    tensors: HashMap<String, Tensor>,
    /// `""` or `"bert."`, whichever the file uses.
    prefix: &'static str,
}

impl Weights {
    fn get(&self, name: &str, shape: &[usize]) -> Result<Vec<f32>, EmbedError> {
        let full = format!("{}{name}", self.prefix);
        let t = self
            .tensors
            .get(&full)
            .ok_or_else(|| EmbedError::Config(format!("weight {full} is missing")))?;
        if t.dims() != shape {
            return Err(EmbedError::Config(format!(
                "weight {full} has shape {:?}, expected {shape:?}",
                t.dims()
            )));
        }
        Ok(t.to_dtype(candle_core::DType::F32)?
            .flatten_all()?
            .to_vec1::<f32>()?)
    }

    fn layer_norm(&self, name: &str, h: usize) -> Result<(Vec<f32>, Vec<f32>), EmbedError> {
        Ok((
            self.get(&format!("{name}.weight"), &[h])?,
            self.get(&format!("{name}.bias"), &[h])?,
        ))
    }
}

impl Encoder {
    /// Builds the encoder from `config.json` and `model.safetensors` bytes, in f32.
    pub fn load(config: &Config, safetensors: &[u8]) -> Result<Self, EmbedError> {
        Self::load_with(config, safetensors, Precision::F32)
    }

    /// As [`Encoder::load`], the linear layers in `precision`; [`Precision::Bf16`] or
    /// [`Precision::F16`] on a CPU without their instructions is refused rather than run
    /// slowly.
    pub fn load_with(
        config: &Config,
        safetensors: &[u8],
        precision: Precision,
    ) -> Result<Self, EmbedError> {
        if precision == Precision::Bf16 && !Precision::bf16_available() {
            return Err(EmbedError::Config(
                "bf16 needs a CPU with AVX-512 BF16 (avx512_bf16), which this one lacks".into(),
            ));
        }
        if precision == Precision::F16 && !Precision::f16_available() {
            return Err(EmbedError::Config(
                "f16 needs a CPU with AVX-512 FP16 (avx512_fp16), which this one lacks".into(),
            ));
        }
        let (h, i) = (config.hidden_size, config.intermediate_size);
        if config.hidden_act != "gelu" {
            return Err(EmbedError::Config(format!(
                "hidden_act {:?} is not supported (only \"gelu\")",
                config.hidden_act
            )));
        }
        if config.position_embedding_type != "absolute" {
            return Err(EmbedError::Config(format!(
                "position_embedding_type {:?} is not supported",
                config.position_embedding_type
            )));
        }
        if h == 0 || config.num_attention_heads == 0 || h % config.num_attention_heads != 0 {
            return Err(EmbedError::Config(
                "hidden_size must be a positive multiple of num_attention_heads".into(),
            ));
        }
        let tensors = candle_core::safetensors::load_buffer(safetensors, &Device::Cpu)?;
        let prefix = if tensors.contains_key("embeddings.word_embeddings.weight") {
            ""
        } else {
            "bert."
        };
        let w = Weights { tensors, prefix };
        let mut layers = Vec::with_capacity(config.num_hidden_layers);
        for l in 0..config.num_hidden_layers {
            let p = format!("encoder.layer.{l}");
            let mut qkv_w = Vec::with_capacity(3 * h * h);
            let mut qkv_b = Vec::with_capacity(3 * h);
            for part in ["query", "key", "value"] {
                qkv_w.extend(w.get(&format!("{p}.attention.self.{part}.weight"), &[h, h])?);
                qkv_b.extend(w.get(&format!("{p}.attention.self.{part}.bias"), &[h])?);
            }
            let weight =
                |m: Vec<f32>, out: usize, width: usize| Weight::new(m, out, width, precision);
            layers.push(Layer {
                qkv_w: weight(qkv_w, 3 * h, h),
                qkv_b,
                attn_out_w: weight(
                    w.get(&format!("{p}.attention.output.dense.weight"), &[h, h])?,
                    h,
                    h,
                ),
                attn_out_b: w.get(&format!("{p}.attention.output.dense.bias"), &[h])?,
                attn_ln: w.layer_norm(&format!("{p}.attention.output.LayerNorm"), h)?,
                inter_w: weight(
                    w.get(&format!("{p}.intermediate.dense.weight"), &[i, h])?,
                    i,
                    h,
                ),
                inter_b: w.get(&format!("{p}.intermediate.dense.bias"), &[i])?,
                out_w: weight(w.get(&format!("{p}.output.dense.weight"), &[h, i])?, h, i),
                out_b: w.get(&format!("{p}.output.dense.bias"), &[h])?,
                out_ln: w.layer_norm(&format!("{p}.output.LayerNorm"), h)?,
            });
        }
        Ok(Self {
            hidden: h,
            heads: config.num_attention_heads,
            intermediate: i,
            eps: config.layer_norm_eps as f32,
            max_positions: config.max_position_embeddings,
            vocab: config.vocab_size,
            type_vocab: config.type_vocab_size,
            word: w.get("embeddings.word_embeddings.weight", &[config.vocab_size, h])?,
            position: w.get(
                "embeddings.position_embeddings.weight",
                &[config.max_position_embeddings, h],
            )?,
            token_type: w.get(
                "embeddings.token_type_embeddings.weight",
                &[config.type_vocab_size, h],
            )?,
            embed_ln: w.layer_norm("embeddings.LayerNorm", h)?,
            layers,
            precision,
        })
    }

    /// The linear layers' number format.
    pub fn precision(&self) -> Precision {
        self.precision
    }

    pub fn hidden_size(&self) -> usize {
        self.hidden
    }

    pub fn max_positions(&self) -> usize {
        self.max_positions
    }

    /// Pooled (`pooling`), unit-length embeddings of token sequences given as
    /// `(ids, type_ids)`. Empty sequences embed as zero vectors.
    pub fn embed(
        &self,
        seqs: &[(&[u32], &[u32])],
        pooling: Pooling,
    ) -> Result<Vec<Vec<f32>>, EmbedError> {
        let hidden = self.hidden;
        let Some((x, spans)) = self.forward(seqs)? else {
            return Ok(vec![vec![0.0; hidden]; seqs.len()]);
        };
        // Mean over each sequence's tokens (or its first token's, `[CLS]`), then unit length.
        Ok(spans
            .iter()
            .map(|&(start, len)| {
                let pooled = match pooling {
                    Pooling::Mean => len,
                    Pooling::Cls => len.min(1),
                };
                let mut mean = vec![0f32; hidden];
                for row in x[start * hidden..(start + pooled) * hidden].chunks_exact(hidden) {
                    for (m, v) in mean.iter_mut().zip(row) {
                        *m += v;
                    }
                }
                let count = pooled.max(1) as f32;
                mean.iter_mut().for_each(|m| *m /= count);
                let norm = mean.iter().map(|v| v * v).sum::<f32>().sqrt().max(1e-12);
                mean.iter_mut().for_each(|m| *m /= norm);
                mean
            })
            .collect())
    }

    /// The last layer's state of each sequence's first token (`[CLS]`), as it is: what a
    /// sequence-classification head reads. Empty sequences give zero vectors.
    pub fn first_token_states(
        &self,
        seqs: &[(&[u32], &[u32])],
    ) -> Result<Vec<Vec<f32>>, EmbedError> {
        let hidden = self.hidden;
        let Some((x, spans)) = self.forward(seqs)? else {
            return Ok(vec![vec![0.0; hidden]; seqs.len()]);
        };
        Ok(spans
            .iter()
            .map(|&(start, len)| {
                if len == 0 {
                    vec![0.0; hidden]
                } else {
                    x[start * hidden..(start + 1) * hidden].to_vec()
                }
            })
            .collect())
    }

    /// Every layer over the packed tokens of `seqs`: the last states `[tokens, hidden]` and
    /// each sequence's `(first row, length)`; `None` when there is no token at all.
    #[allow(clippy::type_complexity)]
    fn forward(
        &self,
        seqs: &[(&[u32], &[u32])],
    ) -> Result<Option<(Vec<f32>, Vec<(usize, usize)>)>, EmbedError> {
        on_pool(|| self.forward_here(seqs))
    }

    /// [`Self::forward`] on the calling thread (which [`on_pool`] makes one of rayon's).
    #[allow(clippy::type_complexity)]
    fn forward_here(
        &self,
        seqs: &[(&[u32], &[u32])],
    ) -> Result<Option<(Vec<f32>, Vec<(usize, usize)>)>, EmbedError> {
        let hidden = self.hidden;
        let mut spans = Vec::with_capacity(seqs.len());
        let mut total = 0;
        for (ids, types) in seqs {
            if ids.len() > self.max_positions || types.len() != ids.len() {
                return Err(EmbedError::Config(format!(
                    "a sequence of {} tokens does not fit {} positions",
                    ids.len(),
                    self.max_positions
                )));
            }
            if let Some(bad) = ids.iter().find(|&&id| id as usize >= self.vocab) {
                return Err(EmbedError::Tokenizer(format!(
                    "token id {bad} is outside the model's vocabulary"
                )));
            }
            if types.iter().any(|&t| t as usize >= self.type_vocab) {
                return Err(EmbedError::Tokenizer(
                    "token type outside the model's".into(),
                ));
            }
            spans.push((total, ids.len()));
            total += ids.len();
        }
        if total == 0 {
            return Ok(None);
        }

        let mut x = vec![0f32; total * hidden];
        for ((ids, types), &(start, _)) in seqs.iter().zip(&spans) {
            let rows = x[start * hidden..(start + ids.len()) * hidden].chunks_exact_mut(hidden);
            for (pos, ((row, &id), &ty)) in rows.zip(ids.iter()).zip(types.iter()).enumerate() {
                let word = &self.word[id as usize * hidden..][..hidden];
                let position = &self.position[pos * hidden..][..hidden];
                let token_type = &self.token_type[ty as usize * hidden..][..hidden];
                for (((o, a), b), c) in row.iter_mut().zip(word).zip(position).zip(token_type) {
                    *o = a + b + c;
                }
            }
        }
        self.layer_norm(&mut x, &self.embed_ln);

        let mut qkv = vec![0f32; total * 3 * hidden];
        let mut ctx = vec![0f32; total * hidden];
        let mut x1 = vec![0f32; total * hidden];
        let mut inter = vec![0f32; total * self.intermediate];
        let mut pairs = Vec::new();
        for layer in &self.layers {
            // Attention: x1 = LN(x + attention(x)·Wo + bo).
            linear(
                &mut qkv,
                None,
                &x,
                &layer.qkv_w,
                &layer.qkv_b,
                total,
                hidden,
                &mut pairs,
            );
            self.attention(&qkv, &mut ctx, &spans);
            linear(
                &mut x1,
                Some(&x),
                &ctx,
                &layer.attn_out_w,
                &layer.attn_out_b,
                total,
                hidden,
                &mut pairs,
            );
            self.layer_norm(&mut x1, &layer.attn_ln);
            // Feed-forward: x = LN(x1 + gelu(x1·Wi + bi)·Wo + bo).
            linear(
                &mut inter,
                None,
                &x1,
                &layer.inter_w,
                &layer.inter_b,
                total,
                hidden,
                &mut pairs,
            );
            inter
                .par_chunks_mut(ROWS_PER_TASK * self.intermediate)
                .for_each(kernels::gelu);
            linear(
                &mut x,
                Some(&x1),
                &inter,
                &layer.out_w,
                &layer.out_b,
                total,
                self.intermediate,
                &mut pairs,
            );
            self.layer_norm(&mut x, &layer.out_ln);
        }

        Ok(Some((x, spans)))
    }

    fn layer_norm(&self, x: &mut [f32], (gamma, beta): &(Vec<f32>, Vec<f32>)) {
        x.par_chunks_mut(ROWS_PER_TASK * self.hidden)
            .for_each(|rows| kernels::add_layer_norm(rows, &[], gamma, beta, self.eps));
    }

    /// Scaled dot-product attention of every sequence and head; `qkv` rows are
    /// `[query | key | value]`, the result goes to `ctx` (`[tokens, hidden]`).
    fn attention(&self, qkv: &[f32], ctx: &mut [f32], spans: &[(usize, usize)]) {
        let hidden = self.hidden;
        let d = hidden / self.heads;
        let stride = 3 * hidden;
        let scale = 1.0 / (d as f32).sqrt();
        let out = SendPtr(ctx.as_mut_ptr());
        let tasks: Vec<(usize, usize, usize)> = spans
            .iter()
            .filter(|&&(_, len)| len > 0)
            .flat_map(|&(start, len)| (0..self.heads).map(move |h| (start, len, h)))
            .collect();
        tasks
            .into_par_iter()
            .for_each_init(Vec::new, |scores: &mut Vec<f32>, (start, len, h)| {
                let out = &out;
                scores.clear();
                scores.resize(len * len, 0.0);
                let q = qkv[start * stride + h * d..].as_ptr();
                let k = qkv[start * stride + hidden + h * d..].as_ptr();
                let v = qkv[start * stride + 2 * hidden + h * d..].as_ptr();
                // SAFETY: every pointer is offset inside its buffer: rows start..start+len of
                // `qkv` (stride `3·hidden`) and of `ctx` (stride `hidden`), columns within the
                // head's `d`; `scores` holds len×len. Each task writes only its own sequence's
                // rows and its own head's columns of `ctx`, so no two tasks write one element.
                #[expect(unsafe_code, reason = "gemm takes raw pointers and strides")]
                unsafe {
                    // scores = scale · Q·Kᵀ
                    gemm::gemm(
                        len,
                        len,
                        d,
                        scores.as_mut_ptr(),
                        1,
                        len as isize,
                        false,
                        q,
                        1,
                        stride as isize,
                        k,
                        stride as isize,
                        1,
                        0.0,
                        scale,
                        false,
                        false,
                        false,
                        Parallelism::None,
                    );
                    kernels::softmax_rows(scores, len);
                    // ctx = softmax(scores)·V
                    gemm::gemm(
                        len,
                        d,
                        len,
                        out.0.add(start * hidden + h * d),
                        1,
                        hidden as isize,
                        false,
                        scores.as_ptr(),
                        1,
                        len as isize,
                        v,
                        1,
                        stride as isize,
                        0.0,
                        1.0,
                        false,
                        false,
                        false,
                        Parallelism::None,
                    );
                }
            });
    }
}

/// Runs `f` on one of rayon's threads. A forward pass has about eighty parallel steps; called
/// from a thread outside the pool (the encoder queue's, a test's), each step would hand itself
/// to the pool and put the caller to sleep until it is done, a futex round trip per step. On a
/// pool thread the steps split among the threads directly.
fn on_pool<R: Send>(f: impl FnOnce() -> R + Send) -> R {
    if rayon::current_thread_index().is_some() {
        f()
    } else {
        rayon::scope(|_| f())
    }
}

/// A pointer shared by attention tasks that write disjoint parts of one buffer.
struct SendPtr(*mut f32);
// SAFETY: see `Encoder::attention`: tasks write disjoint elements through it.
#[expect(unsafe_code, reason = "attention tasks share one output buffer")]
unsafe impl Send for SendPtr {}
// SAFETY: as above.
#[expect(unsafe_code, reason = "attention tasks share one output buffer")]
unsafe impl Sync for SendPtr {}

/// `out[t, :] = residual[t, :] + bias + input[t, :]·Wᵀ` for `rows` rows, `w` being
/// `[out_width, in_width]` row-major (PyTorch's `Linear` layout); `pairs` is scratch for the
/// input rounded to bf16 when `w` is.
#[allow(clippy::too_many_arguments)]
fn linear(
    out: &mut [f32],
    residual: Option<&[f32]>,
    input: &[f32],
    w: &Weight,
    bias: &[f32],
    rows: usize,
    in_width: usize,
    pairs: &mut Vec<u32>,
) {
    let out_width = bias.len();
    assert!(
        out.len() == rows * out_width
            && input.len() == rows * in_width
            && w.shape() == (out_width, in_width)
            && residual.is_none_or(|r| r.len() == out.len()),
        "linear: mismatched shapes"
    );
    match residual {
        Some(res) => out
            .par_chunks_mut(ROWS_PER_TASK * out_width)
            .zip(res.par_chunks(ROWS_PER_TASK * out_width))
            .for_each(|(o, r)| {
                for (orow, rrow) in o.chunks_exact_mut(out_width).zip(r.chunks_exact(out_width)) {
                    for ((x, a), b) in orow.iter_mut().zip(rrow).zip(bias) {
                        *x = a + b;
                    }
                }
            }),
        None => out.par_chunks_mut(ROWS_PER_TASK * out_width).for_each(|o| {
            for orow in o.chunks_exact_mut(out_width) {
                orow.copy_from_slice(bias);
            }
        }),
    }
    match w {
        Weight::F32(panels) => {
            spread(
                out,
                rows,
                out_width,
                panels.blocks(),
                |r, blocks, o, stride| {
                    kernels::panels::multiply_add(
                        panels,
                        &input[r.start * in_width..r.end * in_width],
                        r.len(),
                        blocks,
                        o,
                        stride,
                    );
                },
            );
        }
        Weight::F16(h) => {
            pairs.clear();
            pairs.resize(rows * in_width, 0);
            pairs
                .par_chunks_mut(ROWS_PER_TASK * in_width)
                .zip(input.par_chunks(ROWS_PER_TASK * in_width))
                .for_each(|(o, i)| kernels::f16::to_halves(i, o));
            let halves = &pairs[..];
            spread(out, rows, out_width, h.blocks(), |r, blocks, o, stride| {
                kernels::f16::multiply_add(
                    h,
                    &halves[r.start * in_width..r.end * in_width],
                    r.len(),
                    blocks,
                    o,
                    stride,
                );
            });
        }
        Weight::Bf16(m) => {
            let p = m.pairs();
            pairs.clear();
            pairs.resize(rows * p, 0);
            pairs
                .par_chunks_mut(ROWS_PER_TASK * p)
                .zip(input.par_chunks(ROWS_PER_TASK * in_width))
                .for_each(|(o, i)| kernels::bf16::to_pairs(i, in_width, o));
            let pairs = &pairs[..];
            spread(out, rows, out_width, m.blocks(), |r, blocks, o, stride| {
                kernels::bf16::multiply_add(
                    m,
                    &pairs[r.start * p..r.end * p],
                    r.len(),
                    blocks,
                    o,
                    stride,
                );
            });
        }
    }
}

/// Rows per task of a product over many rows: six of the kernels' tiles.
const TILE_ROWS: usize = 36;

/// `out += rows·Wᵀ` (`W` in `blocks` panels of 64 columns) spread over the threads by
/// `product(rows, panels, out, stride)`, which adds the given rows' products with the given
/// panels into `out` (rows `stride` apart). Many rows are split in tiles, each against every
/// panel (which stays in the core's cache); few rows (a question's pass) split the panels
/// instead, each thread into a buffer of its own, so both cores work on one question.
fn spread(
    out: &mut [f32],
    rows: usize,
    out_width: usize,
    blocks: usize,
    product: impl Fn(std::ops::Range<usize>, std::ops::Range<usize>, &mut [f32], usize) + Sync,
) {
    let threads = rayon::current_num_threads();
    if rows >= 4 * threads * TILE_ROWS {
        out.par_chunks_mut(TILE_ROWS * out_width)
            .enumerate()
            .for_each(|(i, o)| {
                let first = i * TILE_ROWS;
                product(first..first + o.len() / out_width, 0..blocks, o, out_width);
            });
        return;
    }
    let per = blocks.div_ceil(threads).max(1);
    if per >= blocks {
        product(0..rows, 0..blocks, out, out_width);
        return;
    }
    let block = kernels::panels::BLOCK;
    let parts: Vec<(usize, usize, Vec<f32>)> = (0..blocks)
        .step_by(per)
        .collect::<Vec<_>>()
        .into_par_iter()
        .map(|first| {
            let end = (first + per).min(blocks);
            let col0 = first * block;
            let width = (end * block).min(out_width) - col0;
            let mut part = vec![0f32; rows * width];
            product(0..rows, first..end, &mut part, width);
            (col0, width, part)
        })
        .collect();
    for (col0, width, part) in parts {
        for (orow, prow) in out
            .chunks_exact_mut(out_width)
            .zip(part.chunks_exact(width))
        {
            for (o, v) in orow[col0..col0 + width].iter_mut().zip(prow) {
                *o += v;
            }
        }
    }
}
