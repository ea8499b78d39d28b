//! The Knowledge pages over HTTP: uploading with and without the page's script, the table
//! that refreshes itself, a document's chunks, its original, reprocessing and deletion, the
//! other ways in (a page, a Q&A pair, a CSV), and what an agent is not offered.

use reqwest::multipart::{Form, Part};

use crate::helpers::knowledge::{FAQ, GUIDE};
use crate::helpers::web::{Page, Web};
use crate::helpers::{PASSWORD, TestApp, spawn_app};

fn file(name: &str, bytes: &[u8]) -> Part {
    Part::bytes(bytes.to_vec())
        .file_name(name.to_owned())
        .mime_str("application/octet-stream")
        .expect("mime")
}

/// The id of the first document linked from a page.
fn first_document(page: &Page) -> String {
    let i = page
        .html
        .find("<td><a href=\"/knowledge/")
        .expect("a document link")
        + "<td><a".len();
    let rest = &page.html[i + " href=\"/knowledge/".len()..];
    rest[..rest.find('"').expect("end")].to_owned()
}

async fn signed_in_owner(app: &TestApp) -> Web<'_> {
    app.owner("ana@acme.test", "Acme").await;
    let web = Web::new(app);
    assert_eq!(web.sign_in("ana@acme.test", PASSWORD).await.status, 303);
    web
}

#[tokio::test]
async fn an_upload_without_the_script_lands_in_the_table_which_refreshes_until_it_is_ready() {
    let app = spawn_app().await;
    let web = signed_in_owner(&app).await;
    let page = web.get("/knowledge").await;
    assert_eq!(page.status, 200);
    assert!(
        page.html.contains("0 of 10 documents on the Starter plan."),
        "{}",
        page.html
    );
    assert!(page.html.contains("No documents yet"), "{}", page.html);

    // The form's parts as a browser sends them: the token first, then the files.
    let form = Form::new()
        .text("csrf", web.csrf())
        .part("file", file("guide.md", GUIDE.as_bytes()))
        .part("file", file("faq.txt", FAQ.as_bytes()));
    let page = web.post_multipart("/knowledge/upload", form, &[]).await;
    assert_eq!(
        (page.status, page.location.as_deref()),
        (303, Some("/knowledge?added=2"))
    );
    let page = web.get("/knowledge?added=2").await;
    assert!(page.html.contains("Added 2 documents"), "{}", page.html);
    assert!(page.html.contains("2 of 10 documents"), "{}", page.html);
    // While they are processed, the table asks again every 2 s.
    let table = web.get("/knowledge/documents").await;
    assert!(
        table.html.contains("hx-trigger=\"every 2s"),
        "{}",
        table.html
    );
    assert!(table.html.contains("<progress"), "{}", table.html);

    app.run_pending_jobs().await;
    let table = web.get("/knowledge/documents").await;
    assert_eq!(table.html.matches(">Ready<").count(), 2, "{}", table.html);
    assert!(
        !table.html.contains("every 2s"),
        "nothing left to watch: {}",
        table.html
    );
}

#[tokio::test]
async fn the_script_uploads_each_file_on_its_own_request_and_hears_why_one_is_refused() {
    let app = spawn_app().await;
    let web = signed_in_owner(&app).await;
    web.get("/knowledge").await;
    let token = web.csrf();
    let script = [
        ("x-csrf-token", token.as_str()),
        ("x-requested-with", "XMLHttpRequest"),
    ];
    let page = web
        .post_multipart(
            "/knowledge/upload",
            Form::new().part("file", file("guide.md", GUIDE.as_bytes())),
            &script,
        )
        .await;
    assert_eq!(page.status, 202);
    assert_eq!(page.html, "Uploaded: guide is being processed.");

    let page = web
        .post_multipart(
            "/knowledge/upload",
            Form::new().part("file", file("photo.png", b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR")),
            &script,
        )
        .await;
    assert_eq!(page.status, 415, "{}", page.html);
    assert!(
        page.html.starts_with("Photo.png") || page.html.contains("photo.png"),
        "{}",
        page.html
    );

    // Without the token nothing is stored.
    let page = web
        .post_multipart(
            "/knowledge/upload",
            Form::new().part("file", file("faq.txt", FAQ.as_bytes())),
            &[("x-requested-with", "XMLHttpRequest")],
        )
        .await;
    assert_eq!(page.status, 403);
    assert!(
        web.get("/knowledge")
            .await
            .html
            .contains("1 of 10 documents")
    );
}

#[tokio::test]
async fn a_documents_page_shows_what_the_bot_read_and_offers_its_original_reprocessing_and_deletion()
 {
    let app = spawn_app().await;
    let web = signed_in_owner(&app).await;
    web.get("/knowledge").await;
    let form = Form::new()
        .text("csrf", web.csrf())
        .part("file", file("guide.md", GUIDE.as_bytes()));
    web.post_multipart("/knowledge/upload", form, &[]).await;
    app.run_pending_jobs().await;
    let list = web.get("/knowledge").await;
    let id = first_document(&list);

    let page = web.get(&format!("/knowledge/{id}")).await;
    assert_eq!(page.status, 200);
    assert!(page.html.contains("What the bot read"));
    assert!(
        page.html.contains("#1 · Acme Help Center · "),
        "its heading: {}",
        page.html
    );
    assert!(page.html.contains("within 14 days"), "{}", page.html);
    let original = web.get(&format!("/knowledge/{id}/original")).await;
    assert_eq!(original.status, 200);
    assert!(
        original.headers["content-disposition"]
            .to_str()
            .expect("ascii")
            .contains("guide.md")
    );
    assert_eq!(original.html, GUIDE);

    let page = web.submit(&format!("/knowledge/{id}/reprocess"), &[]).await;
    assert_eq!(
        page.location,
        Some(format!("/knowledge/{id}?reprocessing=1"))
    );
    let page = web.get(&format!("/knowledge/{id}?reprocessing=1")).await;
    assert!(page.html.contains("Processing it again"), "{}", page.html);
    app.run_pending_jobs().await;

    let confirm = web.get(&format!("/knowledge/{id}/delete")).await;
    assert!(confirm.html.contains("Delete “guide”?"), "{}", confirm.html);
    let page = web.submit(&format!("/knowledge/{id}/delete"), &[]).await;
    assert_eq!(page.location.as_deref(), Some("/knowledge?deleted=1"));
    assert_eq!(web.get(&format!("/knowledge/{id}")).await.status, 404);
    assert!(
        web.get("/knowledge")
            .await
            .html
            .contains("0 of 10 documents")
    );
}

#[tokio::test]
async fn a_page_a_qa_pair_and_a_csv_come_in_through_their_forms_with_errors_in_words() {
    let app = spawn_app().await;
    let web = signed_in_owner(&app).await;
    web.get("/knowledge").await;
    let page = web
        .submit(
            "/knowledge/url",
            &[
                ("url", "ftp://files.example/faq"),
                ("max_depth", "0"),
                ("max_pages", "20"),
            ],
        )
        .await;
    assert_eq!(page.status, 422, "{}", page.html);
    assert!(page.html.contains("role=\"alert\""), "{}", page.html);

    let page = web
        .submit(
            "/knowledge/qa",
            &[
                ("title", "Shipping FAQ"),
                ("question", "Do you ship to Canada?"),
                ("answer", "Yes, in five business days."),
            ],
        )
        .await;
    assert_eq!(page.location.as_deref(), Some("/knowledge?added=1"));

    web.get("/knowledge").await;
    let form = Form::new()
        .text("csrf", web.csrf())
        .text("title", "Returns")
        .part(
            "file",
            file(
                "returns.csv",
                b"question,answer\nCan I return shoes?,Within 30 days.\n",
            ),
        );
    let page = web.post_multipart("/knowledge/qa/import", form, &[]).await;
    assert_eq!(
        page.location.as_deref(),
        Some("/knowledge?added=1"),
        "{}",
        page.html
    );
    let form = Form::new().text("csrf", web.csrf()).part(
        "file",
        file("bad.csv", b"question,answer\nonly a question,\n"),
    );
    let page = web.post_multipart("/knowledge/qa/import", form, &[]).await;
    assert_eq!(page.status, 422, "{}", page.html);

    app.run_pending_jobs().await;
    let page = web.get("/knowledge").await;
    assert!(
        page.html.contains("Shipping FAQ") && page.html.contains("Returns"),
        "{}",
        page.html
    );
}

#[tokio::test]
async fn an_agent_reads_the_knowledge_but_is_offered_no_way_to_change_it() {
    let app = spawn_app().await;
    let owner = app.owner("ana@acme.test", "Acme").await;
    app.member(&owner, "ben@acme.test", "agent").await;
    let web = Web::new(&app);
    assert_eq!(web.sign_in("ben@acme.test", PASSWORD).await.status, 303);
    let page = web.get("/knowledge").await;
    assert_eq!(page.status, 200);
    assert!(!page.html.contains("upload-form"), "{}", page.html);
    assert!(
        page.html.contains("href=\"/knowledge\""),
        "the section is in the navigation"
    );
    // Forced, it is refused, and nothing is stored.
    let form = Form::new()
        .text("csrf", web.csrf())
        .part("file", file("guide.md", GUIDE.as_bytes()));
    let page = web.post_multipart("/knowledge/upload", form, &[]).await;
    assert_eq!(page.status, 403, "{}", page.html);
    assert!(
        web.get("/knowledge")
            .await
            .html
            .contains("0 of 10 documents")
    );
}
