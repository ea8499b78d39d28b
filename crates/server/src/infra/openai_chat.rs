//! Any OpenAI-compatible Chat Completions endpoint behind the [`ChatModel`] port: OpenAI,
//! Groq, Gemini's OpenAI-compatible endpoint, Mistral, Together, Ollama, vLLM, llama.cpp's
//! server. `POST {base}/chat/completions` with a bearer key; with streaming the answer comes
//! as server-sent events (`data: {chunk}` lines, then `data: [DONE]`), the last chunk
//! carrying the usage when `stream_options.include_usage` is honoured.
//!
//! 429 and 5xx are retried (honouring `Retry-After` up to a limit) before anything was
//! streamed; then the model is reported unavailable and the chain's next model answers. A
//! provider that reports no usage has its tokens counted here with the local tokenizer.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use cortex_core::ports::{
    ChatError, ChatMessage, ChatModel, ChatRequest, ChatResponse, ChatRole, ChatUsage, DeltaSink,
    ToolCall,
};
use serde::Deserialize;
use serde_json::{Value, json};

/// Counts tokens when the provider does not.
pub type TokenCounter = Arc<dyn Fn(&str) -> usize + Send + Sync>;

/// Largest answer body read (a non-streamed answer or one streamed event line).
const MAX_BODY_BYTES: usize = 4 << 20;
/// Most tool calls one streamed answer may make.
const MAX_TOOL_CALLS: usize = 32;

pub struct OpenAiChat {
    id: String,
    client: reqwest::Client,
    url: String,
    api_key: Option<String>,
    api_model: String,
    /// Longest wait for the first byte and between two streamed pieces.
    timeout: Duration,
    attempts: u32,
    max_retry_wait: Duration,
    count: TokenCounter,
}

pub struct OpenAiChatConfig {
    pub id: String,
    pub base_url: String,
    pub api_key: Option<String>,
    pub model: String,
    pub timeout: Duration,
    pub attempts: u32,
    pub max_retry_wait: Duration,
}

impl OpenAiChat {
    pub fn new(config: OpenAiChatConfig, count: TokenCounter) -> anyhow::Result<Self> {
        Ok(Self {
            client: reqwest::Client::builder()
                .connect_timeout(config.timeout)
                .read_timeout(config.timeout)
                .build()?,
            url: format!("{}/chat/completions", config.base_url.trim_end_matches('/')),
            id: config.id,
            api_key: config.api_key,
            api_model: config.model,
            timeout: config.timeout,
            attempts: config.attempts.max(1),
            max_retry_wait: config.max_retry_wait,
            count,
        })
    }

    fn body(&self, request: &ChatRequest, stream: bool) -> Value {
        let messages: Vec<Value> = request.messages.iter().map(message_json).collect();
        let mut body = json!({
            "model": self.api_model,
            "messages": messages,
            "temperature": request.temperature,
            "max_tokens": request.max_tokens,
            "stream": stream,
        });
        if stream {
            body["stream_options"] = json!({ "include_usage": true });
        }
        if !request.tools.is_empty() {
            body["tools"] = request
                .tools
                .iter()
                .map(|t| {
                    json!({
                        "type": "function",
                        "function": {
                            "name": t.name,
                            "description": t.description,
                            "parameters": t.parameters,
                        }
                    })
                })
                .collect();
        }
        body
    }

    /// Sends the request, retrying 429/5xx and connection failures; returns a response with a
    /// success status.
    async fn send(&self, body: &Value) -> Result<reqwest::Response, ChatError> {
        let mut last = String::new();
        for attempt in 1..=self.attempts {
            let mut req = self.client.post(&self.url).json(body);
            if let Some(key) = &self.api_key {
                req = req.bearer_auth(key);
            }
            let response = match tokio::time::timeout(self.timeout, req.send()).await {
                Err(_) => {
                    last = format!("{} did not answer within {:?}", self.id, self.timeout);
                    continue;
                }
                Ok(Err(e)) => {
                    last = if e.is_timeout() {
                        format!("{} timed out", self.id)
                    } else {
                        format!("{} could not be reached", self.id)
                    };
                    continue;
                }
                Ok(Ok(r)) => r,
            };
            let status = response.status();
            if status.is_success() {
                return Ok(response);
            }
            if status.as_u16() == 429 || status.is_server_error() {
                last = format!("{} answered HTTP {}", self.id, status.as_u16());
                if attempt == self.attempts {
                    break;
                }
                let wait = retry_after(&response)
                    .unwrap_or(Duration::from_millis(250 << (attempt - 1).min(4)));
                if wait > self.max_retry_wait {
                    last.push_str(&format!(" and asked to wait {wait:?}"));
                    break;
                }
                tokio::time::sleep(wait).await;
                continue;
            }
            if status.as_u16() == 401 || status.as_u16() == 403 {
                return Err(ChatError::Failed(format!(
                    "{} rejected the configured credentials (HTTP {})",
                    self.id,
                    status.as_u16()
                )));
            }
            let message = read_limited(response)
                .await
                .ok()
                .and_then(|b| serde_json::from_slice::<ErrorBody>(&b).ok())
                .map(|e| super::openai_embedder::redact(&e.error.message))
                .unwrap_or_default();
            return Err(ChatError::Failed(format!(
                "{} refused the request (HTTP {}): {message}",
                self.id,
                status.as_u16()
            )));
        }
        Err(ChatError::Unavailable(last))
    }

    fn usage(&self, request: &ChatRequest, reported: Option<Usage>, content: &str) -> ChatUsage {
        match reported {
            Some(u) => ChatUsage {
                prompt_tokens: u.prompt_tokens,
                completion_tokens: u.completion_tokens,
                estimated: false,
            },
            None => ChatUsage {
                // Each message costs a few tokens of framing besides its text.
                prompt_tokens: request
                    .messages
                    .iter()
                    .map(|m| (self.count)(&m.content) as u32 + 4)
                    .sum(),
                completion_tokens: (self.count)(content) as u32,
                estimated: true,
            },
        }
    }

    async fn complete_once(&self, request: &ChatRequest) -> Result<ChatResponse, ChatError> {
        let response = self.send(&self.body(request, false)).await?;
        let bytes = read_limited(response).await.map_err(|e| {
            ChatError::Unavailable(format!("{}: reading the answer failed: {e}", self.id))
        })?;
        let parsed: Completion = serde_json::from_slice(&bytes).map_err(|e| {
            ChatError::Failed(format!("{}: the answer is not readable: {e}", self.id))
        })?;
        let choice =
            parsed.choices.into_iter().next().ok_or_else(|| {
                ChatError::Failed(format!("{}: the answer has no choices", self.id))
            })?;
        let content = choice.message.content.unwrap_or_default();
        let tool_calls = choice
            .message
            .tool_calls
            .into_iter()
            .map(|c| ToolCall {
                id: c.id,
                name: c.function.name,
                arguments: c.function.arguments,
            })
            .collect();
        Ok(ChatResponse {
            model: self.id.clone(),
            usage: self.usage(request, parsed.usage, &content),
            content,
            tool_calls,
            finish_reason: choice.finish_reason.unwrap_or_else(|| "stop".into()),
        })
    }

    async fn complete_streaming(
        &self,
        request: &ChatRequest,
        on_delta: DeltaSink<'_>,
    ) -> Result<ChatResponse, ChatError> {
        let mut response = self.send(&self.body(request, true)).await?;
        let mut buffer: Vec<u8> = Vec::new();
        let mut content = String::new();
        let mut calls: Vec<ToolCall> = Vec::new();
        let mut usage = None;
        let mut finish_reason = None;
        let mut done = false;
        while !done {
            let chunk = match tokio::time::timeout(self.timeout, response.chunk()).await {
                Err(_) => {
                    return Err(ChatError::Unavailable(format!(
                        "{} stopped streaming for {:?}",
                        self.id, self.timeout
                    )));
                }
                Ok(Err(_)) => {
                    return Err(ChatError::Unavailable(format!(
                        "{}: the stream broke off",
                        self.id
                    )));
                }
                Ok(Ok(None)) => break,
                Ok(Ok(Some(c))) => c,
            };
            buffer.extend_from_slice(&chunk);
            while let Some(end) = buffer.iter().position(|&b| b == b'\n') {
                let line: Vec<u8> = buffer.drain(..=end).collect();
                let line = String::from_utf8_lossy(&line);
                let line = line.trim();
                let Some(data) = line.strip_prefix("data:") else {
                    continue; // comments (`: keep-alive`), `event:` lines, blank separators
                };
                let data = data.trim();
                if data == "[DONE]" {
                    done = true;
                    break;
                }
                let chunk: StreamChunk = serde_json::from_str(data).map_err(|e| {
                    ChatError::Failed(format!(
                        "{}: a streamed piece is not readable: {e}",
                        self.id
                    ))
                })?;
                if let Some(u) = chunk.usage {
                    usage = Some(u);
                }
                for choice in chunk.choices {
                    if let Some(text) = choice.delta.content
                        && !text.is_empty()
                    {
                        on_delta(&text);
                        content.push_str(&text);
                    }
                    for call in choice.delta.tool_calls {
                        let i = call.index;
                        if i >= MAX_TOOL_CALLS {
                            return Err(ChatError::Failed(format!(
                                "{}: more than {MAX_TOOL_CALLS} tool calls",
                                self.id
                            )));
                        }
                        if calls.len() <= i {
                            calls.resize_with(i + 1, ToolCall::default);
                        }
                        if let Some(id) = call.id {
                            calls[i].id = id;
                        }
                        if let Some(f) = call.function {
                            if let Some(name) = f.name {
                                calls[i].name.push_str(&name);
                            }
                            if let Some(args) = f.arguments {
                                calls[i].arguments.push_str(&args);
                            }
                        }
                    }
                    if choice.finish_reason.is_some() {
                        finish_reason = choice.finish_reason;
                    }
                }
            }
            if buffer.len() > MAX_BODY_BYTES {
                return Err(ChatError::Failed(format!(
                    "{}: a streamed line exceeds {MAX_BODY_BYTES} bytes",
                    self.id
                )));
            }
        }
        if !done && finish_reason.is_none() {
            return Err(ChatError::Unavailable(format!(
                "{}: the stream ended before the answer did",
                self.id
            )));
        }
        Ok(ChatResponse {
            model: self.id.clone(),
            usage: self.usage(request, usage, &content),
            content,
            tool_calls: calls,
            finish_reason: finish_reason.unwrap_or_else(|| "stop".into()),
        })
    }
}

#[async_trait]
impl ChatModel for OpenAiChat {
    fn id(&self) -> &str {
        &self.id
    }

    async fn complete(
        &self,
        request: &ChatRequest,
        on_delta: Option<DeltaSink<'_>>,
    ) -> Result<ChatResponse, ChatError> {
        match on_delta {
            Some(sink) => self.complete_streaming(request, sink).await,
            None => self.complete_once(request).await,
        }
    }
}

fn message_json(m: &ChatMessage) -> Value {
    let role = match m.role {
        ChatRole::System => "system",
        ChatRole::User => "user",
        ChatRole::Assistant => "assistant",
        ChatRole::Tool => "tool",
    };
    let mut v = json!({ "role": role, "content": m.content });
    if !m.tool_calls.is_empty() {
        v["tool_calls"] = m
            .tool_calls
            .iter()
            .map(|c| {
                json!({
                    "id": c.id,
                    "type": "function",
                    "function": { "name": c.name, "arguments": c.arguments },
                })
            })
            .collect();
    }
    if let Some(id) = &m.tool_call_id {
        v["tool_call_id"] = id.clone().into();
    }
    v
}

/// `Retry-After` in seconds (the HTTP-date form is rare from APIs and treated as absent).
fn retry_after(response: &reqwest::Response) -> Option<Duration> {
    let v = response.headers().get(reqwest::header::RETRY_AFTER)?;
    let secs: f64 = v.to_str().ok()?.trim().parse().ok()?;
    (secs.is_finite() && secs >= 0.0).then(|| Duration::from_secs_f64(secs))
}

async fn read_limited(mut response: reqwest::Response) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(|e| e.to_string())? {
        if out.len() + chunk.len() > MAX_BODY_BYTES {
            return Err(format!("the answer exceeds {MAX_BODY_BYTES} bytes"));
        }
        out.extend_from_slice(&chunk);
    }
    Ok(out)
}

#[derive(Deserialize)]
struct Usage {
    prompt_tokens: u32,
    completion_tokens: u32,
}

#[derive(Deserialize)]
struct Completion {
    choices: Vec<Choice>,
    usage: Option<Usage>,
}

#[derive(Deserialize)]
struct Choice {
    message: AnswerMessage,
    finish_reason: Option<String>,
}

#[derive(Deserialize)]
struct AnswerMessage {
    content: Option<String>,
    #[serde(default)]
    tool_calls: Vec<AnswerToolCall>,
}

#[derive(Deserialize)]
struct AnswerToolCall {
    id: String,
    function: AnswerFunction,
}

#[derive(Deserialize)]
struct AnswerFunction {
    name: String,
    arguments: String,
}

#[derive(Deserialize)]
struct StreamChunk {
    #[serde(default)]
    choices: Vec<StreamChoice>,
    usage: Option<Usage>,
}

#[derive(Deserialize)]
struct StreamChoice {
    #[serde(default)]
    delta: Delta,
    finish_reason: Option<String>,
}

#[derive(Deserialize, Default)]
struct Delta {
    content: Option<String>,
    #[serde(default)]
    tool_calls: Vec<DeltaToolCall>,
}

#[derive(Deserialize)]
struct DeltaToolCall {
    index: usize,
    id: Option<String>,
    function: Option<DeltaFunction>,
}

#[derive(Deserialize)]
struct DeltaFunction {
    name: Option<String>,
    arguments: Option<String>,
}

#[derive(Deserialize)]
struct ErrorBody {
    error: ErrorDetail,
}

#[derive(Deserialize)]
struct ErrorDetail {
    #[serde(default)]
    message: String,
}
