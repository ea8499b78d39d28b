//! all-MiniLM-L6-v2 with candle, matching sentence-transformers: BERT over at most 256 tokens,
//! mean pooling over the attention mask, L2 normalisation.
//!
//! The `tokenizer.json` shipped with the model has padding fixed at 128 and truncation at 128
//! baked in. Both are overridden: batches pad to their longest member (so short queries do not
//! pay for 128 positions) and inputs truncate at 256, the model's `max_seq_length`. Batches are
//! formed from texts of similar length (length bucketing) so little compute goes to padding.

use std::path::Path;

use tokenizers::{Tokenizer, TruncationParams};

use crate::encoder::{Config, Encoder, Pooling, Precision};

/// sentence-transformers' `max_seq_length` for all-MiniLM-L6-v2: the length read when the
/// folder has no `sentence_bert_config.json`.
pub const MAX_TOKENS: usize = 256;
/// Tokens per forward pass: large enough that every matrix product keeps both cores busy.
const BATCH_TOKENS: usize = 4096;

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
    encoder: Encoder,
    pooling: Pooling,
    /// Longest input in tokens, `[CLS]` and `[SEP]` included.
    max_tokens: usize,
    /// Truncates at [`MAX_TOKENS`]; no padding (batches are packed, not padded).
    tokenizer: Tokenizer,
    /// No truncation: counts a text's real length.
    counter: Tokenizer,
}

pub(crate) fn read(dir: &Path, name: &str) -> Result<Vec<u8>, EmbedError> {
    let path = dir.join(name);
    if !path.exists() {
        return Err(EmbedError::Missing(path.display().to_string()));
    }
    std::fs::read(&path).map_err(|source| EmbedError::Read {
        path: path.display().to_string(),
        source,
    })
}

/// What sentence-transformers keeps beside the weights: the pooling
/// (`1_Pooling/config.json`: `pooling_mode_cls_token` or `pooling_mode_mean_tokens`) and the
/// longest input (`sentence_bert_config.json`: `max_seq_length`). A folder without them (the
/// three files `scripts/fetch-model.sh` fetches) reads as mean pooling over 256 tokens, what
/// all-MiniLM-L6-v2 ships with.
pub fn sentence_settings(dir: &Path, max_positions: usize) -> Result<(Pooling, usize), EmbedError> {
    let json = |name: &str| -> Result<Option<serde_json::Value>, EmbedError> {
        match read(dir, name) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .map(Some)
                .map_err(|e| EmbedError::Config(format!("{name}: {e}"))),
            Err(EmbedError::Missing(_)) => Ok(None),
            Err(e) => Err(e),
        }
    };
    let pooling = match json("1_Pooling/config.json")? {
        None => Pooling::Mean,
        Some(p) if p["pooling_mode_cls_token"] == true => Pooling::Cls,
        Some(p) if p["pooling_mode_mean_tokens"] == true => Pooling::Mean,
        Some(_) => {
            return Err(EmbedError::Config(
                "1_Pooling/config.json: only mean and CLS pooling are supported".into(),
            ));
        }
    };
    let max_tokens = match json("sentence_bert_config.json")? {
        Some(c) => c["max_seq_length"]
            .as_u64()
            .and_then(|n| usize::try_from(n).ok())
            .filter(|&n| n >= 8)
            .ok_or_else(|| {
                EmbedError::Config("sentence_bert_config.json: max_seq_length is missing".into())
            })?,
        None => MAX_TOKENS,
    };
    Ok((pooling, max_tokens.min(max_positions)))
}

impl MiniLm {
    /// Loads `model.safetensors`, `tokenizer.json` and `config.json` from `dir` (any
    /// BERT-architecture model), with its pooling and length ([`sentence_settings`]), in f32.
    pub fn load(dir: &Path) -> Result<Self, EmbedError> {
        Self::load_with(dir, Precision::F32)
    }

    /// As [`MiniLm::load`], the encoder's linear layers in `precision`.
    pub fn load_with(dir: &Path, precision: Precision) -> Result<Self, EmbedError> {
        let config: Config = serde_json::from_slice(&read(dir, "config.json")?)
            .map_err(|e| EmbedError::Config(e.to_string()))?;
        let (pooling, max_tokens) = sentence_settings(dir, config.max_position_embeddings)?;
        let mut counter = Tokenizer::from_bytes(read(dir, "tokenizer.json")?)
            .map_err(|e| EmbedError::Tokenizer(e.to_string()))?;
        counter.with_padding(None);
        counter
            .with_truncation(None)
            .map_err(|e| EmbedError::Tokenizer(e.to_string()))?;
        let mut tokenizer = counter.clone();
        tokenizer
            .with_truncation(Some(TruncationParams {
                max_length: max_tokens,
                ..Default::default()
            }))
            .map_err(|e| EmbedError::Tokenizer(e.to_string()))?;
        let encoder = Encoder::load_with(&config, &read(dir, "model.safetensors")?, precision)?;
        Ok(Self {
            encoder,
            pooling,
            max_tokens,
            tokenizer,
            counter,
        })
    }

    /// The encoder's number format.
    pub fn precision(&self) -> Precision {
        self.encoder.precision()
    }

    pub fn dimensions(&self) -> usize {
        self.encoder.hidden_size()
    }

    /// Longest input in tokens, `[CLS]` and `[SEP]` included.
    pub fn max_tokens(&self) -> usize {
        self.max_tokens
    }

    pub fn pooling(&self) -> Pooling {
        self.pooling
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
        let encoded = self.tokenize(texts)?;
        let seqs: Vec<(&[u32], &[u32])> = encoded.iter().map(Sequence::pair).collect();
        in_batches(&seqs, BATCH_TOKENS, |batch| self.encode(batch))
    }

    /// `texts` as the model reads them (`[CLS]`, `[SEP]`, truncated at [`Self::max_tokens`]):
    /// `(ids, type_ids)` per text, for [`Self::encode`]. The tokenizer's half of
    /// [`Self::embed`], so a caller can tokenise on its own thread and batch the forward pass.
    ///
    /// Runs on the calling thread, one text after the other (the tokenizer's own batch call
    /// would spread over rayon's pool, which is the encoder's).
    pub fn tokenize(&self, texts: &[&str]) -> Result<Vec<Sequence>, EmbedError> {
        texts
            .iter()
            .map(|t| {
                let e = self
                    .tokenizer
                    .encode(*t, true)
                    .map_err(|e| EmbedError::Tokenizer(e.to_string()))?;
                Ok(Sequence {
                    ids: e.get_ids().to_vec(),
                    type_ids: e.get_type_ids().to_vec(),
                })
            })
            .collect()
    }

    /// The forward pass's half of [`Self::embed`]: unit-length embeddings of tokenised
    /// sequences packed into one batch (the caller bounds its size), in order.
    pub fn encode(&self, seqs: &[(&[u32], &[u32])]) -> Result<Vec<Vec<f32>>, EmbedError> {
        self.encoder.embed(seqs, self.pooling)
    }
}

/// One tokenised text: its token ids and token type ids, of equal length.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Sequence {
    pub ids: Vec<u32>,
    pub type_ids: Vec<u32>,
}

impl Sequence {
    /// The `(ids, type_ids)` pair the encoder reads.
    pub fn pair(&self) -> (&[u32], &[u32]) {
        (&self.ids, &self.type_ids)
    }

    /// Its length in tokens.
    pub fn len(&self) -> usize {
        self.ids.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }
}

/// Runs `pass` over `seqs` packed end to end into batches of at most `budget` tokens
/// (a longer sequence goes alone), its outputs concatenated in order.
pub(crate) fn in_batches<T>(
    seqs: &[(&[u32], &[u32])],
    budget: usize,
    mut pass: impl FnMut(&[(&[u32], &[u32])]) -> Result<Vec<T>, EmbedError>,
) -> Result<Vec<T>, EmbedError> {
    let mut out = Vec::with_capacity(seqs.len());
    let mut start = 0;
    let mut tokens = 0;
    for (i, (ids, _)) in seqs.iter().enumerate() {
        if tokens + ids.len() > budget && i > start {
            out.extend(pass(&seqs[start..i])?);
            start = i;
            tokens = 0;
        }
        tokens += ids.len();
    }
    if start < seqs.len() {
        out.extend(pass(&seqs[start..])?);
    }
    Ok(out)
}
