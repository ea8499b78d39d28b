//! all-MiniLM-L6-v2 with candle, matching sentence-transformers: BERT over at most 256 tokens,
//! mean pooling over the attention mask, L2 normalisation.
//!
//! The `tokenizer.json` shipped with the model has padding fixed at 128 and truncation at 128
//! baked in. Both are overridden: batches pad to their longest member (so short queries do not
//! pay for 128 positions) and inputs truncate at 256, the model's `max_seq_length`. Batches are
//! formed from texts of similar length (length bucketing) so little compute goes to padding.

use std::path::Path;

use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;
use candle_transformers::models::bert::{BertModel, Config};
use tokenizers::{PaddingParams, PaddingStrategy, Tokenizer, TruncationParams};

/// sentence-transformers' `max_seq_length` for this model.
pub const MAX_TOKENS: usize = 256;
/// Texts per forward pass. On CPU larger batches buy little; bucketing matters more.
const BATCH: usize = 16;

#[derive(Debug, thiserror::Error)]
pub enum EmbedError {
    #[error("model file {0} is missing")]
    Missing(String),
    #[error("cannot read {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("invalid model configuration: {0}")]
    Config(String),
    #[error("tokenizer: {0}")]
    Tokenizer(String),
    #[error("model: {0}")]
    Model(#[from] candle_core::Error),
}

/// The loaded model. `embed` is CPU-bound: call it from a blocking thread.
pub struct MiniLm {
    model: BertModel,
    /// Pads to the batch's longest text and truncates at [`MAX_TOKENS`].
    tokenizer: Tokenizer,
    /// No padding or truncation: counts a text's real length.
    counter: Tokenizer,
    device: Device,
    dimensions: usize,
}

fn read(dir: &Path, name: &str) -> Result<Vec<u8>, EmbedError> {
    let path = dir.join(name);
    if !path.exists() {
        return Err(EmbedError::Missing(path.display().to_string()));
    }
    std::fs::read(&path).map_err(|source| EmbedError::Read {
        path: path.display().to_string(),
        source,
    })
}

impl MiniLm {
    /// Loads `model.safetensors`, `tokenizer.json` and `config.json` from `dir`.
    pub fn load(dir: &Path) -> Result<Self, EmbedError> {
        let config_json = read(dir, "config.json")?;
        let config: Config =
            serde_json::from_slice(&config_json).map_err(|e| EmbedError::Config(e.to_string()))?;
        let dimensions = serde_json::from_slice::<serde_json::Value>(&config_json)
            .ok()
            .and_then(|v| v["hidden_size"].as_u64())
            .and_then(|d| usize::try_from(d).ok())
            .ok_or_else(|| EmbedError::Config("hidden_size missing".into()))?;
        let mut counter = Tokenizer::from_bytes(read(dir, "tokenizer.json")?)
            .map_err(|e| EmbedError::Tokenizer(e.to_string()))?;
        counter.with_padding(None);
        counter
            .with_truncation(None)
            .map_err(|e| EmbedError::Tokenizer(e.to_string()))?;
        let mut tokenizer = counter.clone();
        tokenizer.with_padding(Some(PaddingParams {
            strategy: PaddingStrategy::BatchLongest,
            ..Default::default()
        }));
        tokenizer
            .with_truncation(Some(TruncationParams {
                max_length: MAX_TOKENS,
                ..Default::default()
            }))
            .map_err(|e| EmbedError::Tokenizer(e.to_string()))?;
        let device = Device::Cpu;
        let vb = VarBuilder::from_buffered_safetensors(
            read(dir, "model.safetensors")?,
            DType::F32,
            &device,
        )?;
        let model = BertModel::load(vb, &config)?;
        Ok(Self {
            model,
            tokenizer,
            counter,
            device,
            dimensions,
        })
    }

    pub fn dimensions(&self) -> usize {
        self.dimensions
    }

    /// Tokens in `text` as the model sees them, without the `[CLS]`/`[SEP]` markers and before
    /// truncation: what the chunker budgets with.
    pub fn count_tokens(&self, text: &str) -> usize {
        self.counter
            .encode(text, false)
            .map(|e| e.get_ids().len())
            .unwrap_or_else(|_| text.split_whitespace().count())
    }

    /// Unit-length embeddings of `texts`, in order.
    pub fn embed(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>, EmbedError> {
        // Length bucketing: embed in order of length, then put results back in place.
        let mut order: Vec<usize> = (0..texts.len()).collect();
        order.sort_by_key(|&i| texts[i].len());
        let mut out = vec![Vec::new(); texts.len()];
        for batch in order.chunks(BATCH) {
            let inputs: Vec<&str> = batch.iter().map(|&i| texts[i]).collect();
            for (&i, v) in batch.iter().zip(self.embed_batch(&inputs)?) {
                out[i] = v;
            }
        }
        Ok(out)
    }

    fn embed_batch(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>, EmbedError> {
        let encodings = self
            .tokenizer
            .encode_batch(texts.to_vec(), true)
            .map_err(|e| EmbedError::Tokenizer(e.to_string()))?;
        let rows = encodings.len();
        let cols = encodings.first().map_or(0, |e| e.get_ids().len());
        let flat = |f: &dyn Fn(&tokenizers::Encoding) -> &[u32]| -> Vec<u32> {
            encodings.iter().flat_map(|e| f(e).to_vec()).collect()
        };
        let ids = Tensor::from_vec(flat(&|e| e.get_ids()), (rows, cols), &self.device)?;
        let type_ids = Tensor::from_vec(flat(&|e| e.get_type_ids()), (rows, cols), &self.device)?;
        let mask = Tensor::from_vec(
            flat(&|e| e.get_attention_mask()),
            (rows, cols),
            &self.device,
        )?;
        let hidden = self.model.forward(&ids, &type_ids, Some(&mask))?;
        // Mean over real tokens only.
        let mask = mask.to_dtype(DType::F32)?.unsqueeze(2)?;
        let summed = hidden.broadcast_mul(&mask)?.sum(1)?;
        let counts = mask.sum(1)?.clamp(1e-9, f64::MAX)?;
        let mean = summed.broadcast_div(&counts)?;
        let norms = mean.sqr()?.sum_keepdim(1)?.sqrt()?.clamp(1e-12, f64::MAX)?;
        Ok(mean.broadcast_div(&norms)?.to_vec2::<f32>()?)
    }
}
