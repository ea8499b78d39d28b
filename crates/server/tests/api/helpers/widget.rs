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
