//! A cross-encoder: a BERT-family sequence-classification model (sentence-transformers'
//! `CrossEncoder`, e.g. `cross-encoder/ms-marco-MiniLM-L-6-v2`) that reads a question and a
//! passage together, `[CLS] question [SEP] passage [SEP]` with the passage's tokens of type 1,
//! and scores how well the passage answers. Run by the project's own encoder
//! ([`crate::encoder`]); the head is BERT's pooler (`tanh` of a dense layer over the `[CLS]`
//! state) and a linear classifier. One output: its logistic, so scores are in (0, 1); two
//! (irrelevant, relevant): the softmax probability of the second.

use std::path::Path;

use candle_core::Device;
use tokenizers::{Tokenizer, TruncationParams, TruncationStrategy};

use crate::encoder::{Config, Encoder};
use crate::minilm::{EmbedError, in_batches, read};

/// The longest pair read, in tokens (BERT's positions, at most): longer pairs lose tokens
/// from the longer side first, as sentence-transformers truncates them.
pub const MAX_PAIR_TOKENS: usize = 512;
/// Tokens per forward pass.
const BATCH_TOKENS: usize = 4096;

/// The loaded model. `score` is CPU-bound: call it from a blocking thread.
pub struct CrossEncoder {
    encoder: Encoder,
    hidden: usize,
    /// The pooler's dense layer, `[hidden, hidden]` (out × in), and its bias.
    pooler_w: Vec<f32>,
    pooler_b: Vec<f32>,
    /// `[labels, hidden]` and `[labels]`; 1 or 2 labels.
    classifier_w: Vec<f32>,
    classifier_b: Vec<f32>,
    labels: usize,
    tokenizer: Tokenizer,
}

impl CrossEncoder {
    /// Loads `model.safetensors`, `tokenizer.json` and `config.json` from `dir`: a
    /// `BertForSequenceClassification` with one or two labels.
    pub fn load(dir: &Path) -> Result<Self, EmbedError> {
        let config: Config = serde_json::from_slice(&read(dir, "config.json")?)
            .map_err(|e| EmbedError::Config(e.to_string()))?;
        let weights = read(dir, "model.safetensors")?;
        let encoder = Encoder::load(&config, &weights)?;
        let h = config.hidden_size;
        let tensors = candle_core::safetensors::load_buffer(&weights, &Device::Cpu)?;
        let get = |names: &[&str], shape: Option<&[usize]>| -> Result<Vec<f32>, EmbedError> {
            let (name, t) = names
                .iter()
                .find_map(|n| tensors.get(*n).map(|t| (*n, t)))
                .ok_or_else(|| {
                    EmbedError::Config(format!(
                        "weight {} is missing: not a sequence-classification model",
                        names[0]
                    ))
                })?;
            if let Some(shape) = shape
                && t.dims() != shape
            {
                return Err(EmbedError::Config(format!(
                    "weight {name} has shape {:?}, expected {shape:?}",
                    t.dims()
                )));
            }
            Ok(t.to_dtype(candle_core::DType::F32)?
                .flatten_all()?
                .to_vec1::<f32>()?)
        };
        let pooler_w = get(
            &["bert.pooler.dense.weight", "pooler.dense.weight"],
            Some(&[h, h]),
        )?;
        let pooler_b = get(&["bert.pooler.dense.bias", "pooler.dense.bias"], Some(&[h]))?;
        let classifier_b = get(&["classifier.bias"], None)?;
        let labels = classifier_b.len();
        if !(1..=2).contains(&labels) {
            return Err(EmbedError::Config(format!(
                "the classifier has {labels} labels; a reranker has 1 (a score) or 2"
            )));
        }
        let classifier_w = get(&["classifier.weight"], Some(&[labels, h]))?;
        let mut tokenizer = Tokenizer::from_bytes(read(dir, "tokenizer.json")?)
            .map_err(|e| EmbedError::Tokenizer(e.to_string()))?;
        tokenizer.with_padding(None);
        tokenizer
            .with_truncation(Some(TruncationParams {
                max_length: MAX_PAIR_TOKENS.min(encoder.max_positions()),
                strategy: TruncationStrategy::LongestFirst,
                ..Default::default()
            }))
            .map_err(|e| EmbedError::Tokenizer(e.to_string()))?;
        Ok(Self {
            encoder,
            hidden: h,
            pooler_w,
            pooler_b,
            classifier_w,
            classifier_b,
            labels,
            tokenizer,
        })
    }

    /// How well each passage answers `query`, in (0, 1), in the passages' order.
    pub fn score(&self, query: &str, passages: &[&str]) -> Result<Vec<f32>, EmbedError> {
        let pairs: Vec<(String, String)> = passages
            .iter()
            .map(|p| (query.to_owned(), (*p).to_owned()))
            .collect();
        let encodings = self
            .tokenizer
            .encode_batch(pairs, true)
            .map_err(|e| EmbedError::Tokenizer(e.to_string()))?;
        let seqs: Vec<(&[u32], &[u32])> = encodings
            .iter()
            .map(|e| (e.get_ids(), e.get_type_ids()))
            .collect();
        let states = in_batches(&seqs, BATCH_TOKENS, |batch| {
            self.encoder.first_token_states(batch)
        })?;
        Ok(states.iter().map(|cls| self.head(cls)).collect())
    }

    /// Pooler and classifier over one `[CLS]` state.
    fn head(&self, cls: &[f32]) -> f32 {
        let h = self.hidden;
        let pooled: Vec<f32> = self
            .pooler_w
            .chunks_exact(h)
            .zip(&self.pooler_b)
            .map(|(row, b)| (dot(row, cls) + b).tanh())
            .collect();
        let logits: Vec<f32> = self
            .classifier_w
            .chunks_exact(h)
            .zip(&self.classifier_b)
            .map(|(row, b)| dot(row, &pooled) + b)
            .collect();
        match self.labels {
            1 => 1.0 / (1.0 + (-logits[0]).exp()),
            _ => 1.0 / (1.0 + (logits[0] - logits[1]).exp()),
        }
    }
}

fn dot(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}
