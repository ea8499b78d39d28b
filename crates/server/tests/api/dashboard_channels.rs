//! The Channels page over HTTP: widget keys with their snippet and revocation, the plan gate,
//! connecting a Meta channel by id and token (checked against the Graph API stand-in), its
//! status and disconnection, and what an agent is not offered.

use crate::helpers::graph::{GRAPH_TOKEN, spawn_graph};
use crate::helpers::web::Web;
use crate::helpers::{PASSWORD, TestApp, spawn_app, spawn_app_with};

fn id_after(html: &str, prefix: &str) -> String {
    let i = html.find(prefix).unwrap_or_else(|| panic!("no {prefix}")) + prefix.len();
    let rest = &html[i..];
    rest[..rest.find('/').expect("end")].to_owned()
}

#[tokio::test]
async fn a_widget_key_is_made_with_its_snippet_and_revoked_after_a_confirmation() {
    let app = spawn_app().await;
    app.owner("ana@acme.test", "Acme").await;
    let web = Web::new(&app);
    web.sign_in("ana@acme.test", PASSWORD).await;
    let page = web.get("/channels").await;
    assert_eq!(page.status, 200);
    assert!(page.html.contains("No widget key yet"), "{}", page.html);
    assert!(
        page.html.contains("does not include WhatsApp"),
        "the Starter plan's gate: {}",
        page.html
    );

    let fields = |origins: &'static str| {
        vec![
            ("name", "Shop"),
            ("origins", origins),
            ("color", "#ffcc00"),
            ("title", "Need help?"),
            ("position", "left"),
        ]
    };
    let page = web
        .submit("/channels/widget-keys", &fields("shop.example"))
        .await;
    assert_eq!(page.status, 422, "{}", page.html);
    assert!(page.html.contains("role=\"alert\""));
    let page = web
        .submit(
            "/channels/widget-keys",
            &fields("https://shop.example\nhttps://www.shop.example"),
        )
        .await;
    let location = page.location.expect("redirect");
    assert!(
        location.starts_with("/channels?done=key&key="),
        "{location}"
    );
    let page = web.get(&location).await;
    assert!(page.html.contains("Paste this tag"), "{}", page.html);
    // The snippet, as text on the page (the copy button copies the text itself).
    assert!(
        page.html.contains(
            "&#60;script src=&#34;https://support.example/widget.js&#34; data-key=&#34;wk_"
        ),
        "{}",
        page.html
    );
    assert!(
        page.html
            .contains("https://shop.example, https://www.shop.example")
    );
    assert!(page.html.contains("data-color=\"#ffcc00\""));

    let id = id_after(&page.html, "/channels/widget-keys/");
    let confirm = web.get(&format!("/channels/widget-keys/{id}/revoke")).await;
    assert!(
        confirm.html.contains("Revoke the widget key “Shop”?"),
        "{}",
        confirm.html
    );
    let page = web
        .submit(&format!("/channels/widget-keys/{id}/revoke"), &[])
        .await;
    assert_eq!(page.location.as_deref(), Some("/channels?done=key-revoked"));
    assert!(web.get("/channels").await.html.contains(">Revoked<"));
}

async fn growth_owner(app: &TestApp) -> Web<'_> {
    let owner = app.owner("ana@acme.test", "Acme").await;
    let operator = app.operator("ops@cortex.test").await;
    app.on_plan(&operator, &owner, "growth").await;
    let web = Web::new(app);
    web.sign_in("ana@acme.test", PASSWORD).await;
    web
}

#[tokio::test]
async fn a_meta_channel_connects_by_id_and_token_shows_its_status_and_disconnects() {
    let (graph, _) = spawn_graph(vec![]).await;
    let app = spawn_app_with(move |s| s.providers.meta_graph_base_url = Some(graph)).await;
    let web = growth_owner(&app).await;
    let page = web.get("/channels").await;
    assert!(
        page.html.contains("Connect by id and access token"),
        "{}",
        page.html
    );
    assert!(!page.html.contains("does not include WhatsApp"));

    // A token that does not reach the page is refused in words, nothing stored.
    let page = web
        .submit(
            "/channels/connections",
            &[
                ("kind", "messenger"),
                ("provider", "meta"),
                ("asset_id", "1122334455"),
                ("access_token", "EAAG-wrong-token-000000000"),
            ],
        )
        .await;
    assert_eq!(page.status, 422, "{}", page.html);
    assert!(page.html.contains("role=\"alert\""), "{}", page.html);
    assert!(
        web.get("/channels")
            .await
            .html
            .contains("No messaging channel yet.")
    );

    let page = web
        .submit(
            "/channels/connections",
            &[
                ("kind", "whatsapp"),
                ("provider", "meta"),
                ("asset_id", "106540352242922"),
                ("access_token", GRAPH_TOKEN),
                ("name", "Support line"),
            ],
        )
        .await;
    assert_eq!(
        page.location.as_deref(),
        Some("/channels?done=connected"),
        "{}",
        page.html
    );
    let page = web.get("/channels?done=connected").await;
    assert!(
        page.html.contains("WhatsApp · Support line"),
        "{}",
        page.html
    );
    assert!(page.html.contains(">Active<"), "{}", page.html);
    assert!(!page.html.contains(GRAPH_TOKEN), "the token is never shown");

    let id = id_after(&page.html, "/channels/connections/");
    let confirm = web
        .get(&format!("/channels/connections/{id}/disconnect"))
        .await;
    assert!(
        confirm.html.contains("Disconnect WhatsApp “Support line”?"),
        "{}",
        confirm.html
    );
    let page = web
        .submit(&format!("/channels/connections/{id}/disconnect"), &[])
        .await;
    assert_eq!(
        page.location.as_deref(),
        Some("/channels?done=disconnected")
    );
    assert!(
        web.get("/channels")
            .await
            .html
            .contains("No messaging channel yet.")
    );
}

#[tokio::test]
async fn an_agent_sees_the_channels_but_is_offered_no_change_and_is_refused_one() {
    let app = spawn_app().await;
    let owner = app.owner("ana@acme.test", "Acme").await;
    app.member(&owner, "ben@acme.test", "agent").await;
    let web = Web::new(&app);
    web.sign_in("ben@acme.test", PASSWORD).await;
    let page = web.get("/channels").await;
    assert_eq!(page.status, 200);
    assert!(
        !page.html.contains("Create a widget key") && !page.html.contains("Connect ManyChat"),
        "{}",
        page.html
    );
    let page = web
        .submit(
            "/channels/widget-keys",
            &[
                ("origins", "https://shop.example"),
                ("color", "#2563eb"),
                ("title", "Hi"),
                ("position", "right"),
            ],
        )
        .await;
    assert_eq!(page.status, 403, "{}", page.html);
}
