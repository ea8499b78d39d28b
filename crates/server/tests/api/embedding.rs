//! The local model's shared forward passes, with the real all-MiniLM-L6-v2: questions asked at
//! once are embedded together, and each gets the vector it gets alone.

use std::sync::Arc;
use std::time::Duration;

use cortex_ai::encoder::Precision;
use cortex_core::ports::Embedder;
use cortexlayer_server::infra::embedder::LocalEmbedder;
use cortexlayer_server::infra::encoder_queue::Limits;

use crate::helpers::model_dir;

const QUESTIONS: [&str; 16] = [
    "can i send back tea i already opened",
    "opening hours on sunday?",
    "How long does shipping to Canada take",
    "do you deliver to the islands",
    "my order never arrived what now",
    "is there a student discount",
    "Wie lange dauert der Versand?",
    "refund",
    "change the email on my account",
    "the app crashes when I upload a photo, help",
    "peut-on payer en plusieurs fois ?",
    "what's the warranty on the blender",
    "do you have gluten free bread",
    "cancel my subscription please",
    "where do i find my invoice",
    "is parking free at the hotel",
];

fn cosine(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn questions_asked_at_once_share_passes_and_each_gets_the_vector_it_gets_alone() {
    // A long wait, so that the sixteen questions, asked at once, are all waiting before the
    // first pass however slow the machine.
    let embedder = Arc::new(LocalEmbedder::new(model_dir()).with_limits(Limits {
        max_wait: Duration::from_millis(50),
        ..Limits::default()
    }));
    embedder.warm_up().await.unwrap();
    let loaded = embedder.load().unwrap();
    let start = loaded.queue.passes();
    let mut alone = Vec::new();
    for q in QUESTIONS {
        alone.push(embedder.embed_query(q).await.unwrap());
    }
    let before = loaded.queue.passes();
    assert_eq!(
        before.passes - start.passes,
        16,
        "one pass per question asked alone"
    );

    let together: Vec<_> = QUESTIONS
        .iter()
        .map(|q| {
            let e = embedder.clone();
            tokio::spawn(async move { e.embed_query(q).await })
        })
        .collect();
    for (i, t) in together.into_iter().enumerate() {
        let v = t.await.unwrap().unwrap();
        assert_eq!(v.len(), 384);
        let c = cosine(&v, &alone[i]);
        assert!(c > 0.99999, "question {i}: cosine {c} to its vector alone");
        // And not another question's vector.
        for (j, other) in alone.iter().enumerate() {
            if j != i {
                assert!(
                    cosine(&v, other) < 0.99,
                    "question {i} got question {j}'s vector"
                );
            }
        }
    }
    let after = loaded.queue.passes();
    assert!(
        after.passes - before.passes <= 4,
        "sixteen questions at once took {} passes",
        after.passes - before.passes
    );
    assert_eq!(after.sequences - before.sequences, 16);

    // A document's chunks come back in order, the same as embedded for a request.
    let texts: Vec<String> = QUESTIONS.iter().map(|q| format!("Answer: {q}.")).collect();
    let as_document = embedder.embed_documents(texts.clone()).await.unwrap();
    let as_request = embedder.embed(texts).await.unwrap();
    assert_eq!(as_document.len(), 16);
    for (d, r) in as_document.iter().zip(&as_request) {
        assert!(cosine(d, r) > 0.99999);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_model_warmed_up_in_the_background_runs_at_the_precision_that_was_set() {
    let embedder = LocalEmbedder::new(model_dir()).with_precision(Precision::Bf16);
    let warmed = embedder.warm_up().await;
    if Precision::bf16_available() {
        warmed.unwrap();
        assert_eq!(embedder.load().unwrap().model.precision(), Precision::Bf16);
    } else {
        let e = warmed.unwrap_err();
        assert!(e.to_string().contains("bf16"), "{e}");
    }
}
