//! The widget: a key for allowed origins, and the events of a streamed answer.

use serde_json::{Value, json};

use super::TestApp;

/// The events of a server-sent event stream: (name, data).
pub async fn events(r: reqwest::Response) -> Vec<(String, Value)> {
    let text = r.text().await.expect("stream");
    text.split("\n\n")
        .filter_map(|block| {
            let mut name = None;
            let mut data = String::new();
            for line in block.lines() {
                if let Some(n) = line.strip_prefix("event:") {
                    name = Some(n.trim().to_owned());
                } else if let Some(d) = line.strip_prefix("data:") {
                    data.push_str(d.trim_start());
                }
            }
            Some((name?, serde_json::from_str(&data).ok()?))
        })
        .collect()
}

pub async fn widget_key(app: &TestApp, token: &str, origins: &[&str]) -> Value {
    let r = app
        .post_as(
            "/api/v1/widget-keys",
            token,
            &json!({ "name": "Shop", "allowed_origins": origins }),
        )
        .await;
    assert_eq!(r.status(), 201);
    r.json().await.expect("json")
}

/// A tenant's page on its own origin, with the widget's tag.
pub async fn spawn_page(html: std::sync::Arc<std::sync::Mutex<String>>) -> String {
    let app = axum::Router::new().route(
        "/",
        axum::routing::get(move || {
            let html = html.lock().expect("lock").clone();
            async move { axum::response::Html(html) }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move { axum::serve(listener, app).await.expect("serve") });
    format!("http://{addr}")
}

/// The tenant's shop page: a heading and the widget's one tag for `key`, served by `server`.
pub fn shop_page(server: &str, key: &str) -> String {
    format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Acme shop</title></head>\
         <body><h1>Acme shop</h1>\
         <script src=\"{server}/widget.js\" data-key=\"{key}\" async></script></body></html>"
    )
}
