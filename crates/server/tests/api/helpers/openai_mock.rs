//! A local stand-in for an OpenAI-compatible Chat Completions API. It checks each request as
//! the real API would (bearer key, `model`, `messages` with known roles and text content,
//! `stream` with `stream_options.include_usage`, `tools` of type `function`) and answers
//! from a script of replies shaped like OpenAI's documented examples: a `chat.completion`
//! object, a stream of `chat.completion.chunk` events ending in `data: [DONE]`, or an error
//! status with OpenAI's error body (and `Retry-After` for 429).

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde_json::{Value, json};
use tokio::net::TcpListener;

#[derive(Clone, Debug)]
pub enum Reply {
    /// A `chat.completion` with this text (and tool calls), and usage.
    Text {
        content: String,
        tool_calls: Vec<(String, String, String)>,
        usage: Option<(u32, u32)>,
    },
    /// The same as a stream: each piece one chunk.
    Stream {
        pieces: Vec<String>,
        tool_calls: Vec<(String, String, String)>,
        usage: Option<(u32, u32)>,
    },
    /// An error status with OpenAI's error body; `retry_after` sets the header.
    Status {
        status: u16,
        retry_after: Option<u64>,
    },
    /// `then`, after a pause (a slow provider).
    Delay { millis: u64, then: Box<Reply> },
}

impl Reply {
    pub fn text(content: &str, usage: (u32, u32)) -> Self {
        Self::Text {
            content: content.into(),
            tool_calls: Vec::new(),
            usage: Some(usage),
        }
    }

    pub fn stream(pieces: &[&str], usage: (u32, u32)) -> Self {
        Self::Stream {
            pieces: pieces.iter().map(|p| (*p).to_owned()).collect(),
            tool_calls: Vec::new(),
            usage: Some(usage),
        }
    }

    pub fn status(status: u16, retry_after: Option<u64>) -> Self {
        Self::Status {
            status,
            retry_after,
        }
    }
}

/// One request the server received.
#[derive(Clone, Debug)]
pub struct Recorded {
    pub authorization: Option<String>,
    pub body: Value,
    pub at: Instant,
}

#[derive(Clone)]
struct Shared {
    key: String,
    script: Arc<Mutex<VecDeque<Reply>>>,
    requests: Arc<Mutex<Vec<Recorded>>>,
}

pub struct MockLlm {
    /// e.g. `http://127.0.0.1:4321/v1`
    pub base_url: String,
    shared: Shared,
}

impl MockLlm {
    /// Starts a server that accepts `Bearer {key}`.
    pub async fn start(key: &str) -> Self {
        let shared = Shared {
            key: key.to_owned(),
            script: Arc::default(),
            requests: Arc::default(),
        };
        let app = axum::Router::new()
            .route("/v1/chat/completions", post(completions))
            .with_state(shared.clone());
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(async move {
            axum::serve(listener, app).await.expect("serve mock");
        });
        Self {
            base_url: format!("http://{addr}/v1"),
            shared,
        }
    }

    /// Queues replies, answered in order.
    pub fn script(&self, replies: impl IntoIterator<Item = Reply>) {
        self.shared.script.lock().expect("lock").extend(replies);
    }

    pub fn requests(&self) -> Vec<Recorded> {
        self.shared.requests.lock().expect("lock").clone()
    }

    pub fn unused_replies(&self) -> usize {
        self.shared.script.lock().expect("lock").len()
    }
}

fn error(status: StatusCode, message: &str, kind: &str, code: Option<&str>) -> Response {
    (
        status,
        axum::Json(json!({
            "error": { "message": message, "type": kind, "param": null, "code": code }
        })),
    )
        .into_response()
}

/// What the real API refuses with 400.
fn shape_problem(body: &Value) -> Option<String> {
    if !body["model"].is_string() {
        return Some("you must provide a model parameter".into());
    }
    let messages = body["messages"].as_array()?;
    if messages.is_empty() {
        return Some("'messages' must contain at least one message".into());
    }
    for (i, m) in messages.iter().enumerate() {
        let role = m["role"].as_str().unwrap_or("");
        if !["system", "user", "assistant", "tool", "developer"].contains(&role) {
            return Some(format!("messages[{i}].role is invalid"));
        }
        if !(m["content"].is_string() || (role == "assistant" && m["tool_calls"].is_array())) {
            return Some(format!("messages[{i}].content must be a string"));
        }
        if role == "tool" && !m["tool_call_id"].is_string() {
            return Some(format!("messages[{i}].tool_call_id is required"));
        }
    }
    if let Some(t) = body.get("temperature")
        && !t.as_f64().is_some_and(|t| (0.0..=2.0).contains(&t))
    {
        return Some("temperature must be between 0 and 2".into());
    }
    if let Some(m) = body.get("max_tokens")
        && m.as_u64().is_none_or(|m| m == 0)
    {
        return Some("max_tokens must be a positive integer".into());
    }
    let stream = body.get("stream").map(|s| s.as_bool());
    if stream == Some(None) {
        return Some("stream must be a boolean".into());
    }
    if body.get("stream_options").is_some() && stream != Some(Some(true)) {
        return Some("stream_options is only allowed when stream is true".into());
    }
    if let Some(tools) = body.get("tools") {
        for t in tools.as_array()? {
            if t["type"] != "function" || !t["function"]["name"].is_string() {
                return Some("tools must be functions with a name".into());
            }
        }
    }
    None
}

fn chunk(delta: Value, finish: Option<&str>) -> String {
    let v = json!({
        "id": "chatcmpl-mock",
        "object": "chat.completion.chunk",
        "created": 1_700_000_000,
        "model": "mock-model",
        "system_fingerprint": "fp_mock",
        "choices": [{ "index": 0, "delta": delta, "logprobs": null, "finish_reason": finish }],
    });
    format!("data: {v}\n\n")
}

async fn completions(State(s): State<Shared>, headers: HeaderMap, body: String) -> Response {
    let authorization = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let parsed: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
    s.requests.lock().expect("lock").push(Recorded {
        authorization: authorization.clone(),
        body: parsed.clone(),
        at: Instant::now(),
    });
    if authorization.as_deref() != Some(&format!("Bearer {}", s.key)) {
        return error(
            StatusCode::UNAUTHORIZED,
            "Incorrect API key provided.",
            "invalid_request_error",
            Some("invalid_api_key"),
        );
    }
    if let Some(problem) = shape_problem(&parsed).or_else(|| {
        (!parsed["messages"].is_array()).then(|| "messages must be an array".to_owned())
    }) {
        return error(
            StatusCode::BAD_REQUEST,
            &problem,
            "invalid_request_error",
            None,
        );
    }
    let wants_stream = parsed["stream"] == true;
    let mut next = s.script.lock().expect("lock").pop_front();
    while let Some(Reply::Delay { millis, then }) = next {
        tokio::time::sleep(std::time::Duration::from_millis(millis)).await;
        next = Some(*then);
    }
    let Some(reply) = next else {
        return error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "the mock has no scripted reply left",
            "server_error",
            None,
        );
    };
    match (reply, wants_stream) {
        (
            Reply::Status {
                status,
                retry_after,
            },
            _,
        ) => {
            let code = StatusCode::from_u16(status).expect("status");
            let mut r = if status == 429 {
                error(
                    code,
                    "Rate limit reached for requests",
                    "requests",
                    Some("rate_limit_exceeded"),
                )
            } else {
                error(
                    code,
                    "The server had an error while processing your request.",
                    "server_error",
                    None,
                )
            };
            if let Some(secs) = retry_after {
                r.headers_mut()
                    .insert("retry-after", secs.to_string().parse().expect("header"));
            }
            r
        }
        (
            Reply::Text {
                content,
                tool_calls,
                usage,
            },
            false,
        ) => completion(content, tool_calls, usage),
        (
            Reply::Stream {
                pieces,
                tool_calls,
                usage,
            },
            true,
        ) => {
            if parsed["stream_options"]["include_usage"] != true {
                return error(
                    StatusCode::BAD_REQUEST,
                    "the test expects stream_options.include_usage",
                    "invalid_request_error",
                    None,
                );
            }
            let mut out = chunk(json!({ "role": "assistant", "content": "" }), None);
            for p in &pieces {
                out.push_str(&chunk(json!({ "content": p }), None));
            }
            for (i, (id, name, args)) in tool_calls.iter().enumerate() {
                // Name first, then the arguments in two pieces, as OpenAI streams them.
                out.push_str(&chunk(
                    json!({ "tool_calls": [{ "index": i, "id": id, "type": "function",
                        "function": { "name": name, "arguments": "" } }] }),
                    None,
                ));
                let (a, b) = args.split_at(args.len() / 2);
                for part in [a, b] {
                    out.push_str(&chunk(
                        json!({ "tool_calls": [{ "index": i, "function": { "arguments": part } }] }),
                        None,
                    ));
                }
            }
            let finish = if tool_calls.is_empty() {
                "stop"
            } else {
                "tool_calls"
            };
            out.push_str(&chunk(json!({}), Some(finish)));
            if let Some((p, c)) = usage {
                let v = json!({
                    "id": "chatcmpl-mock", "object": "chat.completion.chunk",
                    "created": 1_700_000_000, "model": "mock-model", "choices": [],
                    "usage": { "prompt_tokens": p, "completion_tokens": c, "total_tokens": p + c },
                });
                out.push_str(&format!("data: {v}\n\n"));
            }
            out.push_str("data: [DONE]\n\n");
            Response::builder()
                .header("content-type", "text/event-stream")
                .body(Body::from(out))
                .expect("response")
        }
        (Reply::Delay { .. }, _) => unreachable!("delays are unwrapped above"),
        (Reply::Text { .. }, true) => error(
            StatusCode::BAD_REQUEST,
            "the test scripted a JSON reply but the client asked for a stream",
            "invalid_request_error",
            None,
        ),
        (Reply::Stream { .. }, false) => error(
            StatusCode::BAD_REQUEST,
            "the test scripted a stream but the client asked for JSON",
            "invalid_request_error",
            None,
        ),
    }
}

fn completion(
    content: String,
    tool_calls: Vec<(String, String, String)>,
    usage: Option<(u32, u32)>,
) -> Response {
    let calls: Vec<Value> = tool_calls
        .iter()
        .map(|(id, name, args)| {
            json!({ "id": id, "type": "function", "function": { "name": name, "arguments": args } })
        })
        .collect();
    let mut message = json!({ "role": "assistant", "content": content, "refusal": null });
    if !calls.is_empty() {
        message["content"] = Value::Null;
        message["tool_calls"] = calls.into();
    }
    let mut v = json!({
        "id": "chatcmpl-mock",
        "object": "chat.completion",
        "created": 1_700_000_000,
        "model": "mock-model",
        "system_fingerprint": "fp_mock",
        "choices": [{
            "index": 0,
            "message": message,
            "logprobs": null,
            "finish_reason": if tool_calls.is_empty() { "stop" } else { "tool_calls" },
        }],
    });
    if let Some((p, c)) = usage {
        v["usage"] = json!({ "prompt_tokens": p, "completion_tokens": c, "total_tokens": p + c });
    }
    axum::Json(v).into_response()
}
