//! `/openapi.json` and `/docs`: the machine-readable spec and a self-contained page that reads
//! it for people. The page is rendered once at start from the same spec, with no scripts,
//! fonts or anything else fetched from the internet.

use std::fmt::Write;
use std::sync::Arc;

use axum::Router;
use axum::http::header;
use axum::response::{Html, IntoResponse};
use axum::routing::get;
use serde_json::Value;

use crate::app::AppState;

pub struct Docs {
    json: Arc<String>,
    html: Arc<String>,
}

impl Docs {
    pub fn new(spec: &utoipa::openapi::OpenApi) -> Self {
        let value = serde_json::to_value(spec).unwrap_or(Value::Null);
        let json = serde_json::to_string_pretty(&value).unwrap_or_else(|_| "{}".into());
        Self {
            json: Arc::new(json),
            html: Arc::new(render(&value)),
        }
    }

    pub fn router(self) -> Router<AppState> {
        let (json, html) = (self.json, self.html);
        Router::new()
            .route(
                "/openapi.json",
                get(move || {
                    let json = json.clone();
                    async move {
                        (
                            [(header::CONTENT_TYPE, "application/json")],
                            json.as_str().to_owned(),
                        )
                            .into_response()
                    }
                }),
            )
            .route(
                "/docs",
                get(move || {
                    let html = html.clone();
                    async move { Html(html.as_str().to_owned()) }
                }),
            )
    }
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// `#/components/schemas/Name` → `Name`.
fn ref_name(v: &Value) -> Option<&str> {
    v.get("$ref")?.as_str()?.rsplit('/').next()
}

fn type_label(schema: &Value) -> String {
    if let Some(name) = ref_name(schema) {
        return format!("<a href=\"#schema-{0}\">{0}</a>", esc(name));
    }
    if let Some(one_of) = schema.get("oneOf").and_then(Value::as_array) {
        return one_of
            .iter()
            .map(type_label)
            .collect::<Vec<_>>()
            .join(" | ");
    }
    match schema.get("type") {
        Some(Value::String(t)) if t == "array" => {
            format!(
                "array of {}",
                schema
                    .get("items")
                    .map(type_label)
                    .unwrap_or_else(|| "any".into())
            )
        }
        Some(Value::String(t)) => {
            let fmt = schema
                .get("format")
                .and_then(Value::as_str)
                .map(|f| format!(" ({f})"))
                .unwrap_or_default();
            let values = schema
                .get("enum")
                .and_then(Value::as_array)
                .map(|e| {
                    format!(
                        ": {}",
                        e.iter()
                            .filter_map(Value::as_str)
                            .collect::<Vec<_>>()
                            .join(", ")
                    )
                })
                .unwrap_or_default();
            format!("{}{fmt}{}", esc(t), esc(&values))
        }
        Some(Value::Array(ts)) => ts
            .iter()
            .filter_map(Value::as_str)
            .collect::<Vec<_>>()
            .join(" or "),
        _ => "object".into(),
    }
}

fn render(spec: &Value) -> String {
    let mut out = String::new();
    let title = spec
        .pointer("/info/title")
        .and_then(Value::as_str)
        .unwrap_or("API");
    let version = spec
        .pointer("/info/version")
        .and_then(Value::as_str)
        .unwrap_or("");
    let intro = spec
        .pointer("/info/description")
        .and_then(Value::as_str)
        .unwrap_or("");
    let _ = write!(
        out,
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{t} {v}</title><style>{STYLE}</style></head><body><main><h1>{t} <small>{v}</small></h1><p>{i}</p>\
         <p>Machine-readable: <a href=\"/openapi.json\">/openapi.json</a> (OpenAPI 3.1).</p>",
        t = esc(title),
        v = esc(version),
        i = esc(intro)
    );
    let tags: Vec<(String, String)> = spec
        .get("tags")
        .and_then(Value::as_array)
        .map(|ts| {
            ts.iter()
                .map(|t| {
                    (
                        t.get("name")
                            .and_then(Value::as_str)
                            .unwrap_or_default()
                            .to_owned(),
                        t.get("description")
                            .and_then(Value::as_str)
                            .unwrap_or_default()
                            .to_owned(),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    let empty = serde_json::Map::new();
    let paths = spec
        .get("paths")
        .and_then(Value::as_object)
        .unwrap_or(&empty);
    out.push_str("<nav><ul>");
    for (tag, _) in &tags {
        let _ = write!(out, "<li><a href=\"#tag-{0}\">{0}</a></li>", esc(tag));
    }
    out.push_str("<li><a href=\"#schemas\">schemas</a></li></ul></nav>");
    for (tag, description) in &tags {
        let _ = write!(
            out,
            "<section id=\"tag-{0}\"><h2>{0}</h2><p>{1}</p>",
            esc(tag),
            esc(description)
        );
        for (path, item) in paths {
            for method in ["get", "post", "put", "patch", "delete"] {
                let Some(op) = item.get(method) else { continue };
                let in_tag = op
                    .get("tags")
                    .and_then(Value::as_array)
                    .is_some_and(|t| t.iter().any(|x| x == tag.as_str()));
                if in_tag {
                    render_operation(&mut out, method, path, op);
                }
            }
        }
        out.push_str("</section>");
    }
    out.push_str("<section id=\"schemas\"><h2>schemas</h2>");
    if let Some(schemas) = spec
        .pointer("/components/schemas")
        .and_then(Value::as_object)
    {
        for (name, schema) in schemas {
            let _ = write!(
                out,
                "<div class=\"schema\" id=\"schema-{0}\"><h3>{0}</h3>",
                esc(name)
            );
            if let Some(d) = schema.get("description").and_then(Value::as_str) {
                let _ = write!(out, "<p>{}</p>", esc(d));
            }
            let required: Vec<&str> = schema
                .get("required")
                .and_then(Value::as_array)
                .map(|r| r.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default();
            if let Some(props) = schema.get("properties").and_then(Value::as_object) {
                out.push_str("<table><tr><th>field</th><th>type</th><th>description</th></tr>");
                for (field, p) in props {
                    let _ = write!(
                        out,
                        "<tr><td><code>{}</code>{}</td><td>{}</td><td>{}</td></tr>",
                        esc(field),
                        if required.contains(&field.as_str()) {
                            " <em>required</em>"
                        } else {
                            ""
                        },
                        type_label(p),
                        esc(p.get("description").and_then(Value::as_str).unwrap_or(""))
                    );
                }
                out.push_str("</table>");
            } else {
                let _ = write!(out, "<p>{}</p>", type_label(schema));
            }
            out.push_str("</div>");
        }
    }
    out.push_str("</section></main></body></html>");
    out
}

fn render_operation(out: &mut String, method: &str, path: &str, op: &Value) {
    let summary = op.get("summary").and_then(Value::as_str).unwrap_or("");
    let _ = write!(
        out,
        "<article class=\"op\"><h3><span class=\"m {m}\">{M}</span> <code>{p}</code></h3><p class=\"summary\">{s}</p>",
        m = method,
        M = method.to_uppercase(),
        p = esc(path),
        s = esc(summary)
    );
    if let Some(d) = op.get("description").and_then(Value::as_str) {
        let _ = write!(out, "<p>{}</p>", esc(d));
    }
    if op.get("security").is_some() {
        out.push_str("<p class=\"auth\">Needs <code>Authorization: Bearer …</code> (access token or API key).</p>");
    }
    if let Some(params) = op.get("parameters").and_then(Value::as_array) {
        out.push_str("<h4>Parameters</h4><ul>");
        for p in params {
            let _ = write!(
                out,
                "<li><code>{}</code> in {} — {} {}</li>",
                esc(p.get("name").and_then(Value::as_str).unwrap_or("")),
                esc(p.get("in").and_then(Value::as_str).unwrap_or("")),
                p.get("schema").map(type_label).unwrap_or_default(),
                esc(p.get("description").and_then(Value::as_str).unwrap_or(""))
            );
        }
        out.push_str("</ul>");
    }
    if let Some(body) = op.pointer("/requestBody/content/application~1json/schema") {
        let _ = write!(out, "<h4>Request body</h4><p>{}</p>", type_label(body));
    }
    if let Some(responses) = op.get("responses").and_then(Value::as_object) {
        out.push_str("<h4>Responses</h4><ul>");
        for (status, r) in responses {
            let schema = r
                .pointer("/content/application~1json/schema")
                .map(type_label)
                .unwrap_or_default();
            let _ = write!(
                out,
                "<li><strong>{}</strong> {} {}</li>",
                esc(status),
                esc(r.get("description").and_then(Value::as_str).unwrap_or("")),
                schema
            );
        }
        out.push_str("</ul>");
    }
    out.push_str("</article>");
}

const STYLE: &str = "body{font:15px/1.5 system-ui,sans-serif;margin:0;color:#1d2330;background:#fafbfc}\
main{max-width:960px;margin:0 auto;padding:24px}h1 small{color:#667;font-weight:normal;font-size:60%}\
nav ul{list-style:none;padding:0;display:flex;flex-wrap:wrap;gap:12px}\
.op{background:#fff;border:1px solid #dde1e7;border-radius:6px;padding:8px 16px;margin:12px 0}\
.op h3{margin:8px 0}.m{display:inline-block;min-width:64px;text-align:center;border-radius:4px;color:#fff;font-size:13px;padding:2px 6px}\
.get{background:#2b6cb0}.post{background:#2f855a}.put,.patch{background:#b7791f}.delete{background:#c53030}\
.summary{font-weight:600}.auth{color:#555;font-size:13px}table{border-collapse:collapse;width:100%}\
td,th{border-bottom:1px solid #e5e8ec;text-align:left;padding:4px 8px;vertical-align:top}\
.schema{background:#fff;border:1px solid #dde1e7;border-radius:6px;padding:4px 16px;margin:12px 0}\
code{background:#f0f2f5;padding:1px 4px;border-radius:3px}";
