//! Conformance: Lexical and vector search, and the child windows of chunks.

use cortex_core::ids::{DocumentId, TenantId};
use cortex_core::jobs::NewJob;
use cortex_core::knowledge::{
    ChunkVectors, DocumentStage, DocumentStatus, NewChunk, Searchable, Windows,
};
use cortex_core::store::conflict;

use crate::knowledge::{create, parse_job};
use crate::{DynStore, assert_conflict, now, tenant_with_owner};

pub(crate) const MODEL: &str = "test-model";

const DIMS: usize = 384;

pub(crate) fn embed_job(doc: DocumentId, generation: u32) -> NewJob {
    NewJob::now(
        "EmbedChunks",
        serde_json::json!({ "document_id": doc, "generation": generation }),
    )
    .unique(format!("EmbedChunks:{doc}:{generation}"))
}

pub(crate) fn chunks(texts: &[&str]) -> Vec<NewChunk> {
    texts
        .iter()
        .enumerate()
        .map(|(i, t)| {
            let mut c = NewChunk::new(i as u32, (*t).to_owned(), 10);
            c.heading_path = vec!["Guide".into(), format!("Part {i}")];
            c.page_start = Some(i as u32 + 1);
            c.page_end = Some(i as u32 + 2);
            c
        })
        .collect()
}

pub(crate) async fn put_chunks(
    store: &DynStore,
    tenant: TenantId,
    doc: DocumentId,
    g: u32,
    texts: &[&str],
) {
    store
        .replace_chunks(tenant, doc, g, chunks(texts), embed_job(doc, g), now())
        .await
        .expect("replace chunks");
}

/// A deterministic unit vector: mostly along axis `axis`, a little along `axis + 1`.
pub(crate) fn unit(axis: usize, tilt: f32) -> Vec<f32> {
    let mut v = vec![0.0f32; DIMS];
    v[axis % DIMS] = 1.0;
    v[(axis + 1) % DIMS] = tilt;
    let n = (1.0 + tilt * tilt).sqrt();
    v.iter().map(|x| x / n).collect()
}

/// Embeds every pending chunk of `doc` with `vector_of(text)`, and its one window alike.
pub(crate) async fn embed_all(
    store: &DynStore,
    tenant: TenantId,
    doc: DocumentId,
    vector_of: impl Fn(&str) -> Vec<f32>,
) {
    let pending = store
        .pending_embeddings(tenant, doc, MODEL, 1000)
        .await
        .expect("pending");
    let vectors: Vec<ChunkVectors> = pending
        .iter()
        .map(|p| ChunkVectors {
            content_hash: p.content_hash.clone(),
            vector: vector_of(&p.text),
            windows: Some(Windows {
                of: cortex_core::knowledge::content_hash(&p.source_text()),
                vectors: vec![vector_of(&p.text)],
            }),
        })
        .collect();
    store
        .put_embeddings(tenant, MODEL, &vectors)
        .await
        .expect("put embeddings");
}

pub(crate) fn texts(hits: &[cortex_core::knowledge::ChunkHit]) -> Vec<&str> {
    hits.iter().map(|h| h.chunk.text.as_str()).collect()
}

pub async fn chunks_replace_atomically_and_are_found_lexically(store: DynStore) {
    let (t, _) = tenant_with_owner(&store, "owner").await;
    let doc = create(&store, t, "refunds").await;
    store
        .set_document_stage(t, doc, 1, DocumentStage::Parsing, 10)
        .await
        .expect("stage");
    put_chunks(
        &store,
        t,
        doc,
        1,
        &[
            "Refunds are issued within 14 days of a return.",
            "Shipping to Canada takes five business days.",
            "Our office cat is named Biscuit.",
        ],
    )
    .await;
    let d = store.get_document(t, doc).await.expect("get");
    assert_eq!(
        (d.status, d.stage, d.chunk_count),
        (DocumentStatus::Processing, DocumentStage::Embedding, 3)
    );
    assert_eq!(
        d.searchable(),
        Searchable::Lexical,
        "searchable before vectors"
    );
    let hits = store
        .lexical_search(t, "How do I get a refund?", 5)
        .await
        .expect("search");
    assert_eq!(
        texts(&hits),
        vec!["Refunds are issued within 14 days of a return."],
        "stemming finds 'refunds' for 'refund'"
    );
    assert_eq!(hits[0].document_title, "refunds");
    assert_eq!(hits[0].chunk.heading_path, vec!["Guide", "Part 0"]);
    assert_eq!(hits[0].chunk.page_start, Some(1));
    assert!(hits[0].score > 0.0);
    let both = store
        .lexical_search(t, "canada refund", 5)
        .await
        .expect("search");
    assert_eq!(both.len(), 2, "any term may match");
    // The share of a question's word evidence a chunk carries: about all of it for the one
    // chunk holding the question's only term; less once the question also asks for a word
    // no chunk holds; nothing to carry without terms.
    let (refund, one) = store
        .lexical_search_weighed(t, "refund", 5)
        .await
        .expect("search");
    let share = refund[0].score / one;
    assert!((0.8..=1.2).contains(&share), "share {share}");
    let (_, two) = store
        .lexical_search_weighed(t, "refund zeppelin", 5)
        .await
        .expect("search");
    assert!(
        two > 2.0 * one,
        "an unknown word weighs most: {two} vs {one}"
    );
    let (none, zero) = store
        .lexical_search_weighed(t, "?!", 5)
        .await
        .expect("search");
    assert!(none.is_empty());
    assert_eq!(zero, 0.0);
    assert!(
        store
            .lexical_search(t, "\"unbalanced ( NEAR OR", 5)
            .await
            .expect("odd syntax is just words")
            .is_empty()
    );
    assert!(
        store
            .lexical_search(t, "?!", 5)
            .await
            .expect("no terms")
            .is_empty()
    );

    // A second run replaces every chunk at once.
    put_chunks(&store, t, doc, 1, &["Returns are free for members."]).await;
    assert!(
        store
            .lexical_search(t, "refund", 5)
            .await
            .expect("search")
            .is_empty()
    );
    let listed = store.list_chunks(t, doc, 0, 100).await.expect("chunks");
    assert_eq!(texts_of(&listed), vec!["Returns are free for members."]);

    // A run of an older generation cannot touch the document once a newer one started.
    store
        .restart_document(t, doc, parse_job(doc, 2))
        .await
        .expect("restart");
    assert_conflict(
        store
            .replace_chunks(t, doc, 1, chunks(&["stale"]), embed_job(doc, 1), now())
            .await,
        conflict::STALE_GENERATION,
    );
    assert_conflict(
        store
            .set_document_stage(t, doc, 1, DocumentStage::Parsing, 5)
            .await,
        conflict::STALE_GENERATION,
    );
    assert_eq!(
        texts_of(&store.list_chunks(t, doc, 0, 100).await.expect("chunks")),
        vec!["Returns are free for members."],
        "the stale run wrote nothing"
    );
}

fn texts_of(chunks: &[cortex_core::knowledge::Chunk]) -> Vec<&str> {
    chunks.iter().map(|c| c.text.as_str()).collect()
}

pub async fn windows_are_stored_with_their_chunk_and_added_to_vectors_from_before(store: DynStore) {
    let (t, _) = tenant_with_owner(&store, "owner").await;
    let (other, _) = tenant_with_owner(&store, "other").await;
    let a = create(&store, t, "a").await;
    put_chunks(&store, t, a, 1, &["alpha. Two sentences.", "beta"]).await;
    let pending = store
        .pending_embeddings(t, a, MODEL, 100)
        .await
        .expect("pending");
    assert_eq!(pending.len(), 2);
    let alpha = pending[0].content_hash.clone();
    let beta = pending[1].content_hash.clone();
    // A vector without windows (as stored before windows existed) leaves the chunk pending.
    store
        .put_embeddings(
            t,
            MODEL,
            &[ChunkVectors::chunk_only(alpha.clone(), unit(0, 0.0))],
        )
        .await
        .expect("put");
    let still: Vec<String> = store
        .pending_embeddings(t, a, MODEL, 100)
        .await
        .expect("pending")
        .into_iter()
        .map(|p| p.content_hash)
        .collect();
    assert_eq!(still, vec![alpha.clone(), beta.clone()]);
    let read = store
        .chunk_vectors(t, MODEL, std::slice::from_ref(&alpha))
        .await
        .expect("read");
    assert_eq!(read.len(), 1);
    assert_eq!(read[0].windows, None);
    // The next run adds the windows; the vector keeps its row (search finds it once).
    let windows = Windows {
        of: "source-hash".into(),
        vectors: vec![unit(3, 0.0), unit(4, 0.5)],
    };
    store
        .put_embeddings(
            t,
            MODEL,
            &[
                ChunkVectors {
                    content_hash: alpha.clone(),
                    vector: unit(9, 0.0),
                    windows: Some(windows.clone()),
                },
                ChunkVectors {
                    content_hash: beta.clone(),
                    vector: unit(1, 0.0),
                    windows: Some(Windows {
                        of: "beta-source".into(),
                        vectors: Vec::new(),
                    }),
                },
            ],
        )
        .await
        .expect("put windows");
    assert!(
        store
            .pending_embeddings(t, a, MODEL, 100)
            .await
            .expect("pending")
            .is_empty()
    );
    let mut read = store
        .chunk_vectors(t, MODEL, &[beta.clone(), alpha.clone(), "unknown".into()])
        .await
        .expect("read");
    read.sort_by(|x, y| x.content_hash.cmp(&y.content_hash));
    let mut expected = vec![
        ChunkVectors {
            content_hash: alpha.clone(),
            vector: unit(0, 0.0),
            windows: Some(windows),
        },
        ChunkVectors {
            content_hash: beta.clone(),
            vector: unit(1, 0.0),
            windows: Some(Windows {
                of: "beta-source".into(),
                vectors: Vec::new(),
            }),
        },
    ];
    expected.sort_by(|x, y| x.content_hash.cmp(&y.content_hash));
    assert_eq!(
        read, expected,
        "the first vector stays; the windows are added"
    );
    let hits = store
        .vector_search(t, MODEL, &unit(0, 0.0), 10)
        .await
        .expect("search");
    assert_eq!(hits.len(), 2, "each chunk once");
    // Another tenant reads none of them, and another model has none.
    assert!(
        store
            .chunk_vectors(other, MODEL, &[alpha.clone(), beta.clone()])
            .await
            .expect("read")
            .is_empty()
    );
    assert!(
        store
            .chunk_vectors(t, "other-model", std::slice::from_ref(&alpha))
            .await
            .expect("read")
            .is_empty()
    );
    // Deleting the document drops them with the vectors.
    store.delete_document(t, a).await.expect("delete");
    assert!(
        store
            .chunk_vectors(t, MODEL, &[alpha, beta])
            .await
            .expect("read")
            .is_empty()
    );
}

pub async fn vectors_are_stored_once_per_text_and_searched_by_cosine(store: DynStore) {
    let (t, _) = tenant_with_owner(&store, "owner").await;
    let a = create(&store, t, "a").await;
    let b = create(&store, t, "b").await;
    put_chunks(&store, t, a, 1, &["alpha", "beta", "alpha"]).await;
    let pending = store
        .pending_embeddings(t, a, MODEL, 100)
        .await
        .expect("pending");
    assert_eq!(pending.len(), 2, "the repeated text is embedded once");
    let axis = |text: &str| match text {
        "alpha" => unit(0, 0.0),
        "beta" => unit(1, 0.0),
        _ => unit(2, 0.0),
    };
    embed_all(&store, t, a, axis).await;
    assert!(
        store
            .pending_embeddings(t, a, MODEL, 100)
            .await
            .expect("pending")
            .is_empty()
    );
    // The same text in another document reuses the stored vector.
    put_chunks(&store, t, b, 1, &["beta", "gamma"]).await;
    let pending_b = store
        .pending_embeddings(t, b, MODEL, 100)
        .await
        .expect("pending");
    assert_eq!(
        pending_b
            .iter()
            .map(|p| p.text.as_str())
            .collect::<Vec<_>>(),
        vec!["gamma"]
    );
    embed_all(&store, t, b, axis).await;
    // Another model has vectors of its own.
    assert_eq!(
        store
            .pending_embeddings(t, b, "other-model", 100)
            .await
            .expect("pending")
            .len(),
        2
    );

    let hits = store
        .vector_search(t, MODEL, &unit(1, 0.1), 3)
        .await
        .expect("search");
    assert_eq!(hits.len(), 3);
    assert_eq!(hits[0].chunk.text, "beta");
    assert_eq!(
        hits[1].chunk.text, "beta",
        "both chunks holding the text are found"
    );
    assert_ne!(hits[0].chunk.id, hits[1].chunk.id);
    assert_eq!(hits[2].chunk.text, "gamma");
    assert!(
        (hits[0].score - 0.995).abs() < 0.01,
        "cosine, got {}",
        hits[0].score
    );
    assert!(hits[0].score >= hits[2].score);

    let done = store
        .finish_document(t, a, 1, MODEL, now())
        .await
        .expect("finish");
    assert_eq!(
        (done.status, done.stage, done.progress, done.searchable()),
        (
            DocumentStatus::Ready,
            DocumentStage::Done,
            100,
            Searchable::Full
        )
    );
    assert_eq!(done.embedding_model.as_deref(), Some(MODEL));
}

pub async fn a_tenant_gets_its_k_best_vectors_however_many_others_hold(store: DynStore) {
    let (small, _) = tenant_with_owner(&store, "small").await;
    let (big, _) = tenant_with_owner(&store, "big").await;
    // The big tenant's vectors all sit closer to the query than the small tenant's.
    let big_doc = create(&store, big, "big").await;
    let texts_big: Vec<String> = (0..400).map(|i| format!("big chunk {i}")).collect();
    let refs: Vec<&str> = texts_big.iter().map(String::as_str).collect();
    put_chunks(&store, big, big_doc, 1, &refs).await;
    embed_all(&store, big, big_doc, |text| {
        let i: f32 = text
            .rsplit(' ')
            .next()
            .and_then(|n| n.parse().ok())
            .unwrap_or(0.0);
        unit(10, 0.01 + i * 0.0005)
    })
    .await;
    let small_doc = create(&store, small, "small").await;
    put_chunks(
        &store,
        small,
        small_doc,
        1,
        &["one", "two", "three", "four"],
    )
    .await;
    embed_all(&store, small, small_doc, |text| match text {
        "one" => unit(10, 2.0),
        "two" => unit(10, 3.0),
        "three" => unit(10, 4.0),
        _ => unit(11, 0.0),
    })
    .await;
    let hits = store
        .vector_search(small, MODEL, &unit(10, 0.0), 3)
        .await
        .expect("search");
    assert_eq!(texts(&hits), vec!["one", "two", "three"]);
    assert!(hits.iter().all(|h| h.chunk.tenant_id == small));
    let big_hits = store
        .vector_search(big, MODEL, &unit(10, 0.0), 5)
        .await
        .expect("search");
    assert_eq!(
        texts(&big_hits),
        vec![
            "big chunk 0",
            "big chunk 1",
            "big chunk 2",
            "big chunk 3",
            "big chunk 4"
        ]
    );
}

/// Vector search keeps up with changes made after an earlier search: a vector added later is
/// found, and a vector deleted with its document is not found again when a chunk of the same
/// text comes back before it is embedded.
pub async fn vector_search_sees_vectors_added_and_deleted_after_a_search(store: DynStore) {
    let (t, _) = tenant_with_owner(&store, "fresh-vectors").await;
    let a = create(&store, t, "first").await;
    put_chunks(&store, t, a, 1, &["Alpha text about refunds."]).await;
    embed_all(&store, t, a, |_| unit(0, 0.0)).await;
    let hits = store
        .vector_search(t, MODEL, &unit(0, 0.0), 5)
        .await
        .expect("search");
    assert_eq!(texts(&hits), ["Alpha text about refunds."]);

    let b = create(&store, t, "second").await;
    put_chunks(&store, t, b, 1, &["Beta text about shipping."]).await;
    embed_all(&store, t, b, |_| unit(7, 0.0)).await;
    let hits = store
        .vector_search(t, MODEL, &unit(7, 0.0), 1)
        .await
        .expect("search");
    assert_eq!(
        texts(&hits),
        ["Beta text about shipping."],
        "the vector added later is found"
    );

    store.delete_document(t, b).await.expect("delete");
    let c = create(&store, t, "third").await;
    put_chunks(&store, t, c, 1, &["Beta text about shipping."]).await;
    let hits = store
        .vector_search(t, MODEL, &unit(7, 0.0), 5)
        .await
        .expect("search");
    assert_eq!(
        texts(&hits),
        ["Alpha text about refunds."],
        "the re-added text has no vector until it is embedded again"
    );
}

/// Vectors added in batches between searches (as during an ingestion) are each found by the
/// next search, the earlier ones still; a deletion between them is honoured too. The hits
/// must equal those of a fresh search over everything (a second call at the same version).
pub async fn vectors_added_between_searches_join_the_results_and_deletions_leave_them(
    store: DynStore,
) {
    let (t, _) = tenant_with_owner(&store, "growing-vectors").await;
    let mut docs = Vec::new();
    for batch in 0..4usize {
        let d = create(&store, t, &format!("batch-{batch}")).await;
        let passages: Vec<String> = (0..5)
            .map(|i| format!("Batch {batch} passage {i} about topic {}", batch * 5 + i))
            .collect();
        let refs: Vec<&str> = passages.iter().map(String::as_str).collect();
        put_chunks(&store, t, d, 1, &refs).await;
        embed_all(&store, t, d, |text| {
            let topic: usize = text
                .rsplit(' ')
                .next()
                .and_then(|n| n.parse().ok())
                .expect("topic");
            unit(topic * 3, 0.1)
        })
        .await;
        docs.push(d);
        // Each topic added so far is the best hit for its own axis.
        for topic in [0, batch * 5 + 2, batch * 5 + 4] {
            let hits = store
                .vector_search(t, MODEL, &unit(topic * 3, 0.1), 1)
                .await
                .expect("search");
            assert_eq!(
                texts(&hits)[0],
                format!(
                    "Batch {} passage {} about topic {topic}",
                    topic / 5,
                    topic % 5
                ),
                "after batch {batch}"
            );
        }
        let all = store
            .vector_search(t, MODEL, &unit(0, 0.0), 50)
            .await
            .expect("all");
        assert_eq!(
            all.len(),
            (batch + 1) * 5,
            "every vector once after batch {batch}"
        );
    }
    // Deleting the second batch: its passages leave, the others stay, and batches added after
    // the deletion join again.
    store.delete_document(t, docs[1]).await.expect("delete");
    let hits = store
        .vector_search(t, MODEL, &unit(7 * 3, 0.1), 20)
        .await
        .expect("search");
    assert!(hits.iter().all(|h| !h.chunk.text.starts_with("Batch 1 ")));
    assert_eq!(hits.len(), 15);
    let d = create(&store, t, "after-delete").await;
    put_chunks(&store, t, d, 1, &["A late passage about topic 99"]).await;
    embed_all(&store, t, d, |_| unit(99 * 3, 0.1)).await;
    let hits = store
        .vector_search(t, MODEL, &unit(99 * 3, 0.1), 20)
        .await
        .expect("search");
    assert_eq!(texts(&hits)[0], "A late passage about topic 99");
    assert_eq!(hits.len(), 16);
}

/// Chunks added between lexical searches (as during an ingestion) are found by the next
/// search, the earlier ones still; deleted ones leave, and later additions join again.
pub async fn chunks_added_between_lexical_searches_join_and_deleted_ones_leave(store: DynStore) {
    let (t, _) = tenant_with_owner(&store, "growing-chunks").await;
    let topics = ["refunds", "shipping", "passwords", "invoices"];
    let mut docs = Vec::new();
    for (batch, topic) in topics.iter().enumerate() {
        let d = create(&store, t, topic).await;
        let passages: Vec<String> = (0..3)
            .map(|i| format!("All about {topic}, part {i}."))
            .collect();
        let refs: Vec<&str> = passages.iter().map(String::as_str).collect();
        put_chunks(&store, t, d, 1, &refs).await;
        docs.push(d);
        for seen in &topics[..=batch] {
            let hits = store.lexical_search(t, seen, 10).await.expect("search");
            assert_eq!(hits.len(), 3, "{seen} after batch {batch}");
            assert!(hits.iter().all(|h| h.chunk.text.contains(seen)));
        }
        let later = store
            .lexical_search(t, topics[(batch + 1) % topics.len()], 10)
            .await
            .expect("search");
        assert_eq!(later.is_empty(), batch + 1 < topics.len(), "not yet added");
    }
    store.delete_document(t, docs[1]).await.expect("delete");
    assert!(
        store
            .lexical_search(t, "shipping", 10)
            .await
            .expect("search")
            .is_empty(),
        "deleted chunks leave the index"
    );
    assert_eq!(
        store
            .lexical_search(t, "refunds", 10)
            .await
            .expect("search")
            .len(),
        3
    );
    let d = create(&store, t, "late").await;
    put_chunks(&store, t, d, 1, &["Shipping comes back in a late passage."]).await;
    let hits = store
        .lexical_search(t, "shipping", 10)
        .await
        .expect("search");
    assert_eq!(texts(&hits), ["Shipping comes back in a late passage."]);
    // Reprocessing a document replaces its chunks (a deletion, then additions).
    store
        .restart_document(t, docs[0], parse_job(docs[0], 2))
        .await
        .expect("restart");
    put_chunks(&store, t, docs[0], 2, &["Refunds, rewritten."]).await;
    let hits = store
        .lexical_search(t, "refunds", 10)
        .await
        .expect("search");
    assert_eq!(texts(&hits), ["Refunds, rewritten."]);
}
