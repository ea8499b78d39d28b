//! Conformance: Documents, their chunks and their lifecycle.

use chrono::Duration;
use cortex_core::ids::{DocumentId, TenantId};
use cortex_core::jobs::NewJob;
use cortex_core::knowledge::{
    ChunkVectors, DocumentSource, DocumentStage, DocumentStatus, NewDocument, Searchable,
};
use cortex_core::store::{Page, conflict};

use crate::search::{MODEL, chunks, embed_all, embed_job, put_chunks, texts, unit};
use crate::{DynStore, assert_conflict, assert_not_found, now, tenant_with_owner};

fn new_document(title: &str) -> NewDocument {
    NewDocument {
        id: DocumentId::new(),
        title: title.to_owned(),
        filename: Some(format!("{title}.md")),
        source: DocumentSource::Upload,
        source_url: None,
        kind: "markdown".into(),
        size_bytes: 1234,
        sha256: "ab".repeat(32),
        blob_key: Some(format!("blobs/{title}")),
        created_at: now(),
    }
}

pub(crate) fn parse_job(doc: DocumentId, generation: u32) -> NewJob {
    NewJob::now(
        "ParseDocument",
        serde_json::json!({ "document_id": doc, "generation": generation }),
    )
    .unique(format!("ParseDocument:{doc}:{generation}"))
}

pub(crate) async fn create(store: &DynStore, tenant: TenantId, title: &str) -> DocumentId {
    let d = new_document(title);
    let id = d.id;
    store
        .create_document(tenant, d, parse_job(id, 1), None)
        .await
        .expect("create document");
    id
}

pub async fn documents_are_created_with_their_first_job_and_listed_newest_first(store: DynStore) {
    let (t, _) = tenant_with_owner(&store, "owner").await;
    let a = create(&store, t, "a").await;
    let b = create(&store, t, "b").await;
    let doc = store.get_document(t, a).await.expect("get");
    assert_eq!(
        (doc.status, doc.stage, doc.generation, doc.progress),
        (DocumentStatus::Pending, DocumentStage::Queued, 1, 0)
    );
    assert_eq!(doc.searchable(), Searchable::No);
    assert_eq!(doc.filename.as_deref(), Some("a.md"));
    assert_eq!(doc.blob_key.as_deref(), Some("blobs/a"));
    assert_eq!(doc.size_bytes, 1234);
    let listed = store
        .list_documents(t, Page::first(10))
        .await
        .expect("list");
    assert_eq!(listed.iter().map(|d| d.id).collect::<Vec<_>>(), vec![b, a]);
    let second_page = store
        .list_documents(
            t,
            Page {
                limit: 10,
                before: Some(b.0),
            },
        )
        .await
        .expect("page");
    assert_eq!(second_page.len(), 1);
    assert_eq!(store.count_documents(t).await.expect("count"), 2);
    let leased = store
        .lease_jobs(now() + Duration::seconds(1), Duration::seconds(60), 10)
        .await
        .expect("lease");
    assert_eq!(leased.len(), 2, "each document came with its job");
    assert_eq!(leased[0].job.tenant_id, Some(t));
    assert_eq!(doc.job_id, Some(leased[0].job.id));
}

pub async fn the_document_limit_holds_under_concurrent_uploads(store: DynStore) {
    let (t, _) = tenant_with_owner(&store, "owner").await;
    let handles: Vec<_> = (0..8)
        .map(|i| {
            let s = store.clone();
            tokio::spawn(async move {
                let d = new_document(&format!("doc{i}"));
                let id = d.id;
                s.create_document(t, d, parse_job(id, 1), Some(3)).await
            })
        })
        .collect();
    let mut created = 0;
    for h in handles {
        match h.await.expect("join") {
            Ok(_) => created += 1,
            Err(e) => assert!(
                matches!(e, cortex_core::StoreError::Conflict(c) if c == conflict::DOCUMENT_LIMIT_REACHED),
                "unexpected {e:?}"
            ),
        }
    }
    assert_eq!(created, 3);
    assert_eq!(store.count_documents(t).await.expect("count"), 3);
    let jobs = store
        .lease_jobs(now() + Duration::seconds(1), Duration::seconds(60), 20)
        .await
        .expect("lease");
    assert_eq!(jobs.len(), 3, "a refused document leaves no job behind");
}

pub async fn chunks_list_in_order_from_an_offset(store: DynStore) {
    let (t, _) = tenant_with_owner(&store, "owner").await;
    let doc = create(&store, t, "long").await;
    let many: Vec<String> = (0..30).map(|i| format!("Sentence number {i}.")).collect();
    let refs: Vec<&str> = many.iter().map(String::as_str).collect();
    put_chunks(&store, t, doc, 1, &refs).await;
    let page = store.list_chunks(t, doc, 10, 5).await.expect("chunks");
    assert_eq!(
        page.iter().map(|c| c.ordinal).collect::<Vec<_>>(),
        vec![10, 11, 12, 13, 14]
    );
    assert_eq!(page[0].document_id, doc);
    assert_eq!(page[0].tenant_id, t);
}

pub async fn another_tenants_documents_chunks_and_vectors_are_out_of_reach(store: DynStore) {
    let (a, _) = tenant_with_owner(&store, "alice").await;
    let (b, _) = tenant_with_owner(&store, "bob").await;
    let doc = create(&store, a, "secret").await;
    put_chunks(&store, a, doc, 1, &["The launch code is swordfish."]).await;
    embed_all(&store, a, doc, |_| unit(5, 0.0)).await;

    assert_not_found(store.get_document(b, doc).await, "get");
    assert!(
        store
            .list_documents(b, Page::first(10))
            .await
            .expect("list")
            .is_empty()
    );
    assert_eq!(store.count_documents(b).await.expect("count"), 0);
    assert!(
        store
            .list_chunks(b, doc, 0, 10)
            .await
            .expect("chunks")
            .is_empty()
    );
    assert!(
        store
            .pending_embeddings(b, doc, MODEL, 10)
            .await
            .expect("pending")
            .is_empty()
    );
    assert!(
        store
            .lexical_search(b, "swordfish launch code", 10)
            .await
            .expect("search")
            .is_empty()
    );
    // The question's word weight comes from the asking tenant's own index (bob's is empty:
    // every term unknown, ln 2 each), never from alice's, where the words are known.
    let (hits, weight) = store
        .lexical_search_weighed(b, "swordfish launch code", 10)
        .await
        .expect("search");
    assert!(hits.is_empty());
    assert!((weight - 3.0 * 2f32.ln()).abs() < 1e-5, "weight {weight}");
    assert!(
        store
            .vector_search(b, MODEL, &unit(5, 0.0), 10)
            .await
            .expect("search")
            .is_empty()
    );
    assert_not_found(
        store.restart_document(b, doc, parse_job(doc, 2)).await,
        "restart",
    );
    assert_not_found(
        store
            .set_document_stage(b, doc, 1, DocumentStage::Parsing, 1)
            .await,
        "stage",
    );
    assert_not_found(
        store
            .replace_chunks(b, doc, 1, chunks(&["x"]), embed_job(doc, 9), now())
            .await,
        "replace",
    );
    assert_not_found(store.fail_document(b, doc, 1, "x", "y").await, "fail");
    assert_not_found(
        store.finish_document(b, doc, 1, MODEL, now()).await,
        "finish",
    );
    assert_not_found(store.delete_document(b, doc).await, "delete");
    // Vectors put under b's name for a's text do not reach a's search, and the other way.
    store
        .put_embeddings(
            b,
            MODEL,
            &[ChunkVectors::chunk_only("whatever".into(), unit(5, 0.0))],
        )
        .await
        .expect("put");
    assert_eq!(
        store
            .vector_search(a, MODEL, &unit(5, 0.0), 10)
            .await
            .expect("search")
            .len(),
        1
    );
    let still = store.get_document(a, doc).await.expect("still there");
    assert_eq!((still.chunk_count, still.generation), (1, 1));
    assert_eq!(
        store
            .lexical_search(a, "swordfish", 10)
            .await
            .expect("search")
            .len(),
        1
    );
}

pub async fn deleting_a_document_removes_its_chunks_index_entries_and_unused_vectors(
    store: DynStore,
) {
    let (t, _) = tenant_with_owner(&store, "owner").await;
    let a = create(&store, t, "a").await;
    let b = create(&store, t, "b").await;
    put_chunks(&store, t, a, 1, &["shared words here", "only in a: zebra"]).await;
    put_chunks(&store, t, b, 1, &["shared words here"]).await;
    let vec_of = |text: &str| {
        if text.contains("zebra") {
            unit(7, 0.0)
        } else {
            unit(8, 0.0)
        }
    };
    embed_all(&store, t, a, vec_of).await;
    // Searched once before the delete, so an index of the old chunks exists to go stale.
    assert_eq!(
        texts(&store.lexical_search(t, "zebra", 10).await.expect("search")),
        vec!["only in a: zebra"]
    );
    let gone = store.delete_document(t, a).await.expect("delete");
    assert_eq!(gone.id, a);
    assert_not_found(store.get_document(t, a).await, "deleted");
    assert!(
        store
            .list_chunks(t, a, 0, 10)
            .await
            .expect("chunks")
            .is_empty()
    );
    assert!(
        store
            .lexical_search(t, "zebra", 10)
            .await
            .expect("search")
            .is_empty()
    );
    let near_zebra = store
        .vector_search(t, MODEL, &unit(7, 0.0), 10)
        .await
        .expect("search");
    assert_eq!(
        texts(&near_zebra),
        vec!["shared words here"],
        "only the other document's chunk is left"
    );
    assert!(
        store
            .pending_embeddings(t, b, MODEL, 10)
            .await
            .expect("pending")
            .is_empty(),
        "the vector b still uses was kept"
    );
    assert_not_found(store.delete_document(t, a).await, "twice");
}

/// Whether `text`'s vector is stored for the tenant: a new document with that one chunk has
/// nothing to embed exactly when it is.
async fn vector_kept(store: &DynStore, tenant: TenantId, text: &str) -> bool {
    let probe = create(store, tenant, "probe").await;
    put_chunks(store, tenant, probe, 1, &[text]).await;
    let kept = store
        .pending_embeddings(tenant, probe, MODEL, 10)
        .await
        .expect("pending")
        .is_empty();
    store
        .delete_document(tenant, probe)
        .await
        .expect("delete probe");
    kept
}

pub async fn reprocessing_a_document_drops_only_the_vectors_nothing_else_uses(store: DynStore) {
    let (t, _) = tenant_with_owner(&store, "owner").await;
    let (other, _) = tenant_with_owner(&store, "other-owner").await;
    let a = create(&store, t, "a").await;
    let b = create(&store, t, "b").await;
    let theirs = create(&store, other, "theirs").await;
    put_chunks(
        &store,
        t,
        a,
        1,
        &["kept by b too", "only the old a says this"],
    )
    .await;
    put_chunks(&store, t, b, 1, &["kept by b too"]).await;
    put_chunks(&store, other, theirs, 1, &["only the old a says this"]).await;
    embed_all(&store, t, a, |_| unit(3, 0.0)).await;
    embed_all(&store, other, theirs, |_| unit(4, 0.0)).await;

    // `a` parsed again with new text: the old text's vector goes, the shared one stays, and
    // the other tenant's vector of the same text is not touched.
    put_chunks(&store, t, a, 1, &["the new a"]).await;
    assert!(
        !vector_kept(&store, t, "only the old a says this").await,
        "the vector only the old chunk used is dropped"
    );
    assert!(
        vector_kept(&store, t, "kept by b too").await,
        "the vector b still uses is kept"
    );
    assert!(
        vector_kept(&store, other, "only the old a says this").await,
        "another tenant's vector of the same text is kept"
    );
    let hits = store
        .vector_search(other, MODEL, &unit(4, 0.0), 10)
        .await
        .expect("search");
    assert_eq!(texts(&hits), vec!["only the old a says this"]);
}

pub async fn a_failed_document_answers_nothing_until_reprocessed(store: DynStore) {
    let (t, _) = tenant_with_owner(&store, "owner").await;
    let doc = create(&store, t, "manual").await;
    put_chunks(&store, t, doc, 1, &["Press the red button to reset."]).await;
    store
        .fail_document(t, doc, 1, "chunk_limit_exceeded", "too many chunks")
        .await
        .expect("fail");
    let d = store.get_document(t, doc).await.expect("get");
    assert_eq!(d.status, DocumentStatus::Failed);
    assert_eq!(d.error_code.as_deref(), Some("chunk_limit_exceeded"));
    assert_eq!(d.error_message.as_deref(), Some("too many chunks"));
    assert_eq!((d.chunk_count, d.searchable()), (0, Searchable::No));
    assert!(
        store
            .lexical_search(t, "reset button", 5)
            .await
            .expect("search")
            .is_empty()
    );

    let again = store
        .restart_document(t, doc, parse_job(doc, 2))
        .await
        .expect("restart");
    assert_eq!(
        (
            again.status,
            again.stage,
            again.generation,
            again.error_code
        ),
        (DocumentStatus::Pending, DocumentStage::Queued, 2, None)
    );
    put_chunks(&store, t, doc, 2, &["Press the red button to reset."]).await;
    assert_eq!(
        store
            .lexical_search(t, "reset button", 5)
            .await
            .expect("search")
            .len(),
        1
    );
}

pub async fn documents_whose_job_failed_for_good_are_marked_failed(store: DynStore) {
    let (t, _) = tenant_with_owner(&store, "owner").await;
    let doc = create(&store, t, "stuck").await;
    let mut at = now() + Duration::seconds(1);
    let mut job_id = None;
    for _ in 0..3 {
        let l = store
            .lease_jobs(at, Duration::seconds(60), 1)
            .await
            .expect("lease")
            .remove(0);
        job_id = Some(l.job.id);
        at += Duration::seconds(10);
        store
            .fail_job(l.job.id, l.token, "worker crashed", at, at)
            .await
            .expect("fail");
    }
    let job_id = job_id.expect("leased");
    let job = store.get_job(job_id).await.expect("job");
    assert_eq!(job.status, cortex_core::jobs::JobStatus::Failed);
    assert_eq!(
        store.fail_abandoned_documents(now()).await.expect("sweep"),
        1
    );
    let d = store.get_document(t, doc).await.expect("get");
    assert_eq!(d.status, DocumentStatus::Failed);
    assert_eq!(d.error_code.as_deref(), Some("processing_abandoned"));
    assert!(d.error_message.expect("message").contains("worker crashed"));
    assert_eq!(
        store.fail_abandoned_documents(now()).await.expect("sweep"),
        0
    );
}

pub async fn a_fetched_original_is_attached_once_per_run_and_ids_are_unique(store: DynStore) {
    let (t, _) = tenant_with_owner(&store, "owner").await;
    let (other, _) = tenant_with_owner(&store, "other").await;
    let mut d = new_document("https://docs.example.com/start");
    d.kind = "url".into();
    d.source = DocumentSource::Url;
    d.blob_key = None;
    d.size_bytes = 0;
    let id = d.id;
    let again = d.clone();
    store
        .create_document(t, d, parse_job(id, 1), None)
        .await
        .expect("create");
    assert_conflict(
        store
            .create_document(t, again, parse_job(DocumentId::new(), 1), None)
            .await,
        conflict::DOCUMENT_EXISTS,
    );
    let original = cortex_core::knowledge::Original {
        kind: "html".into(),
        size_bytes: 512,
        sha256: "cd".repeat(32),
        blob_key: format!("documents/{t}/{id}"),
        title: Some("Getting started".into()),
        source_url: Some("https://docs.example.com/start/".into()),
    };
    assert_not_found(
        store
            .attach_original(other, id, 1, original.clone(), embed_job(id, 1))
            .await,
        "another tenant",
    );
    assert_conflict(
        store
            .attach_original(t, id, 7, original.clone(), embed_job(id, 7))
            .await,
        conflict::STALE_GENERATION,
    );
    store
        .attach_original(t, id, 1, original, embed_job(id, 1))
        .await
        .expect("attach");
    let doc = store.get_document(t, id).await.expect("get");
    assert_eq!(
        (doc.kind.as_str(), doc.size_bytes, doc.title.as_str()),
        ("html", 512, "Getting started")
    );
    assert_eq!(
        doc.source_url.as_deref(),
        Some("https://docs.example.com/start/")
    );
    assert_eq!(doc.blob_key, Some(format!("documents/{t}/{id}")));
    let jobs = store
        .lease_jobs(now() + Duration::seconds(1), Duration::seconds(60), 10)
        .await
        .expect("lease");
    assert_eq!(jobs.len(), 2, "the first job and the one attached");
    assert_eq!(
        doc.job_id,
        Some(
            jobs.iter()
                .find(|l| l.job.kind == "EmbedChunks")
                .expect("next")
                .job
                .id
        )
    );
}
