//! The local embedder against sentence-transformers: every reference text must come out with
//! cosine ≥ 0.999 to the embedding the Python library made of it (`tests/data`). Needs the
//! real model: `scripts/test.sh` fetches it and sets `CORTEX_MODEL_DIR`.

use std::path::PathBuf;

use cortex_ai::MiniLm;

fn model_dir() -> PathBuf {
    let dir = std::env::var("CORTEX_MODEL_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../data/models/all-MiniLM-L6-v2")
        });
    assert!(
        dir.join("model.safetensors").exists(),
        "the model is not at {}; run scripts/fetch-model.sh or scripts/test.sh",
        dir.display()
    );
    dir
}

fn reference() -> Vec<(String, Vec<f32>)> {
    include_str!("data/minilm-reference.jsonl")
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).expect("json");
            let text = v["text"].as_str().expect("text").to_owned();
            let emb = v["embedding"]
                .as_array()
                .expect("embedding")
                .iter()
                .map(|x| x.as_f64().expect("number") as f32)
                .collect();
            (text, emb)
        })
        .collect()
}

fn cosine(a: &[f32], b: &[f32]) -> f32 {
    let dot: f32 = a.iter().zip(b).map(|(x, y)| x * y).sum();
    let na: f32 = a.iter().map(|x| x * x).sum::<f32>().sqrt();
    let nb: f32 = b.iter().map(|x| x * x).sum::<f32>().sqrt();
    dot / (na * nb)
}

#[test]
fn embeddings_match_sentence_transformers() {
    let model = MiniLm::load(&model_dir()).expect("load");
    assert_eq!(model.dimensions(), 384);
    let refs = reference();
    assert_eq!(refs.len(), 12);
    let texts: Vec<&str> = refs.iter().map(|(t, _)| t.as_str()).collect();
    // All at once: mixed lengths packed into one batch must not bleed into each other.
    let got = model.embed(&texts).expect("embed");
    let mut worst = f32::MAX;
    for ((text, want), got) in refs.iter().zip(&got) {
        assert_eq!(got.len(), 384);
        let norm: f32 = got.iter().map(|x| x * x).sum::<f32>().sqrt();
        assert!((norm - 1.0).abs() < 1e-4, "not unit length: {norm}");
        let c = cosine(got, want);
        assert!(c >= 0.999, "cosine {c} for {text:?}");
        worst = worst.min(c);
    }
    eprintln!(
        "lowest cosine to sentence-transformers over {} texts: {worst:.7}",
        refs.len()
    );
}

/// An encoder in a narrower number format must stay within cosine 0.9995 of
/// sentence-transformers on every reference text, in one pass of all of them and each alone;
/// where the CPU lacks the format's instructions, asking for it is refused.
fn stays_close_to_sentence_transformers(precision: cortex_ai::encoder::Precision, available: bool) {
    if !available {
        let refused = MiniLm::load_with(&model_dir(), precision);
        assert!(
            refused.is_err(),
            "{precision:?} without the instructions must be refused"
        );
        return;
    }
    let model = MiniLm::load_with(&model_dir(), precision).expect("load");
    assert_eq!(model.precision(), precision);
    let refs = reference();
    let texts: Vec<&str> = refs.iter().map(|(t, _)| t.as_str()).collect();
    let mut worst = f32::MAX;
    // All at once, and each alone (a question's pass takes the few-rows path).
    let together = model.embed(&texts).expect("embed");
    for ((text, want), got) in refs.iter().zip(&together) {
        let alone = model.embed(&[text.as_str()]).expect("embed").remove(0);
        for got in [got, &alone] {
            let c = cosine(got, want);
            assert!(c >= 0.9995, "{precision:?} cosine {c} for {text:?}");
            worst = worst.min(c);
        }
    }
    eprintln!(
        "{precision:?}: lowest cosine to sentence-transformers over {} texts: {worst:.7}",
        refs.len()
    );
}

#[test]
fn bf16_embeddings_stay_close_to_sentence_transformers() {
    use cortex_ai::encoder::Precision;
    stays_close_to_sentence_transformers(Precision::Bf16, Precision::bf16_available());
}

#[test]
fn f16_embeddings_stay_close_to_sentence_transformers() {
    use cortex_ai::encoder::Precision;
    stays_close_to_sentence_transformers(Precision::F16, Precision::f16_available());
}

#[test]
fn a_text_embeds_the_same_alone_and_in_a_packed_batch() {
    let model = MiniLm::load(&model_dir()).expect("load");
    let alone = model.embed(&["hi"]).expect("embed").remove(0);
    let long = "a considerably longer sentence packed beside the short one ".repeat(4);
    let batched = model
        .embed(&[long.as_str(), "hi"])
        .expect("embed")
        .remove(1);
    assert!(cosine(&alone, &batched) > 0.99999);
}

#[test]
fn tokens_are_counted_without_markers_or_truncation() {
    let model = MiniLm::load(&model_dir()).expect("load");
    assert_eq!(model.count_tokens("hi"), 1);
    assert_eq!(model.count_tokens(""), 0);
    let long = "word ".repeat(600);
    assert_eq!(
        model.count_tokens(&long),
        600,
        "no truncation at 128 or 256"
    );
}

/// A folder with the model's files and the given sentence-transformers settings beside them.
fn folder_with(pooling: &str, max_seq_length: u32) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "cortex-st-settings-{}-{}",
        std::process::id(),
        pooling
    ));
    std::fs::create_dir_all(dir.join("1_Pooling")).expect("folder");
    for f in ["model.safetensors", "tokenizer.json", "config.json"] {
        let _ = std::fs::remove_file(dir.join(f));
        std::os::unix::fs::symlink(model_dir().join(f), dir.join(f)).expect("link");
    }
    std::fs::write(
        dir.join("1_Pooling/config.json"),
        format!(
            r#"{{"word_embedding_dimension": 384, "pooling_mode_cls_token": {}, "pooling_mode_mean_tokens": {}}}"#,
            pooling == "cls",
            pooling == "mean"
        ),
    )
    .expect("pooling");
    std::fs::write(
        dir.join("sentence_bert_config.json"),
        format!(r#"{{"max_seq_length": {max_seq_length}, "do_lower_case": false}}"#),
    )
    .expect("settings");
    dir
}

#[test]
fn pooling_and_length_are_read_from_the_models_sentence_transformers_settings() {
    use cortex_ai::encoder::Pooling;
    let plain = MiniLm::load(&model_dir()).expect("load");
    assert_eq!(plain.pooling(), Pooling::Mean, "no settings: mean");
    assert_eq!(plain.max_tokens(), 256);

    let mean = MiniLm::load(&folder_with("mean", 128)).expect("load");
    assert_eq!(mean.max_tokens(), 128);
    let text = "Refunds are issued to the original payment method within 14 days.";
    assert_eq!(
        mean.embed(&[text]).expect("embed"),
        plain.embed(&[text]).expect("embed"),
        "a short text is the same under a shorter limit"
    );
    let long: String = "word ".repeat(400);
    let cut = mean.embed(&[long.as_str()]).expect("embed");
    let full = plain.embed(&[long.as_str()]).expect("embed");
    assert_ne!(cut, full, "the limit is applied");

    let cls = MiniLm::load(&folder_with("cls", 256)).expect("load");
    assert_eq!(cls.pooling(), Pooling::Cls);
    let v = &cls.embed(&[text]).expect("embed")[0];
    let m = &plain.embed(&[text]).expect("embed")[0];
    let norm: f32 = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    assert!((norm - 1.0).abs() < 1e-4);
    let cos: f32 = v.iter().zip(m).map(|(a, b)| a * b).sum();
    assert!(cos < 0.99, "the [CLS] state is not the mean: {cos}");

    let bad = folder_with("max", 256);
    std::fs::write(
        bad.join("1_Pooling/config.json"),
        r#"{"pooling_mode_max_tokens": true}"#,
    )
    .expect("pooling");
    assert!(
        MiniLm::load(&bad).is_err(),
        "unsupported pooling is refused"
    );
}

/// A cross-encoder folder: all-MiniLM-L6-v2's body and pooler with a generated one-label
/// classifier (`weight[0][j] = 0.5 sin(0.37 (j + 1))`, bias 0.1), as
/// `tests/tools/cross_reference.py` builds it.
fn cross_encoder_folder(labels: usize) -> PathBuf {
    use candle_core::{Device, Tensor};
    let dir = std::env::temp_dir().join(format!(
        "cortex-cross-encoder-{}-{labels}",
        std::process::id()
    ));
    std::fs::create_dir_all(&dir).expect("folder");
    for f in ["tokenizer.json", "config.json"] {
        let _ = std::fs::remove_file(dir.join(f));
        std::os::unix::fs::symlink(model_dir().join(f), dir.join(f)).expect("link");
    }
    let mut tensors =
        candle_core::safetensors::load(model_dir().join("model.safetensors"), &Device::Cpu)
            .expect("weights");
    let row: Vec<f32> = (0..384)
        .map(|j| 0.5 * (0.37 * (j as f32 + 1.0)).sin())
        .collect();
    let weight: Vec<f32> = (0..labels).flat_map(|_| row.iter().copied()).collect();
    tensors.insert(
        "classifier.weight".into(),
        Tensor::from_vec(weight, (labels, 384), &Device::Cpu).expect("tensor"),
    );
    tensors.insert(
        "classifier.bias".into(),
        Tensor::from_vec(vec![0.1f32; labels], labels, &Device::Cpu).expect("tensor"),
    );
    candle_core::safetensors::save(&tensors, dir.join("model.safetensors")).expect("save");
    dir
}

#[test]
fn the_cross_encoder_scores_pairs_as_an_independent_implementation_does() {
    use cortex_ai::CrossEncoder;
    let reference: Vec<serde_json::Value> =
        serde_json::from_str(include_str!("data/cross-reference.json")).expect("json");
    let model = CrossEncoder::load(&cross_encoder_folder(1)).expect("load");
    let mut by_query: Vec<(&str, Vec<&serde_json::Value>)> = Vec::new();
    for r in &reference {
        let q = r["query"].as_str().expect("query");
        match by_query.iter_mut().find(|(k, _)| *k == q) {
            Some((_, list)) => list.push(r),
            None => by_query.push((q, vec![r])),
        }
    }
    for (query, pairs) in by_query {
        let passages: Vec<&str> = pairs
            .iter()
            .map(|r| r["passage"].as_str().expect("passage"))
            .collect();
        let scores = model.score(query, &passages).expect("score");
        for (r, got) in pairs.iter().zip(&scores) {
            let want = r["score"].as_f64().expect("score") as f32;
            assert!(
                (got - want).abs() < 1e-4,
                "{query:?} / {} tokens: {got} against {want}",
                r["tokens"]
            );
        }
    }
    // The passage is read as the second segment: swapping the two changes the score.
    let pair = &reference[0];
    let (q, p) = (
        pair["query"].as_str().expect("q"),
        pair["passage"].as_str().expect("p"),
    );
    let swapped = model.score(p, &[q]).expect("score")[0];
    assert!((swapped - pair["score"].as_f64().expect("s") as f32).abs() > 1e-3);
    assert!(model.score(q, &[]).expect("nothing to score").is_empty());

    // Two labels (irrelevant, relevant): equal rows give 0.5; three are refused.
    let two = CrossEncoder::load(&cross_encoder_folder(2)).expect("load");
    let s = two.score(q, &[p]).expect("score")[0];
    assert!((s - 0.5).abs() < 1e-6, "{s}");
    assert!(CrossEncoder::load(&cross_encoder_folder(3)).is_err());
    assert!(
        CrossEncoder::load(&model_dir()).is_err(),
        "an embedding model has no classifier"
    );
}
