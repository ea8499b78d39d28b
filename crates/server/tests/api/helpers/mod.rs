//! The API tests' helpers, as `TestApp` methods and stand-ins, never exported from a test file.
//!
//! `spawn_app()`: the real router on `127.0.0.1:0` with a fresh database (SQLite in a temp
//! file, or a fresh PostgreSQL database when `CORTEX_TEST_BACKEND=postgres`) and a local SMTP
//! server that records every mail the app sends; here too the HTTP verbs, accounts (sign-up,
//! members, API keys, operators) and draining the job queue. By area:
//!
//! - [`knowledge`]: the test documents, `upload`, `settled`, `search`, a website to crawl.
//! - [`channels`]: `connect`, `on_plan`, `upload_guide`, what a provider was sent, what waits
//!   for a person.
//! - [`graph`]: the Meta Graph API stand-in. [`openai_mock`]: an OpenAI-compatible provider.
//! - [`widget`]: widget keys and a stream's events. [`webdriver`]: headless Chromium.
//! - [`serve`]: a real `cortexlayer serve` process (crash and restart tests).
//! - [`web`]: a browser's cookies and forms over plain HTTP (the dashboard's pages).

pub mod channels;
pub mod graph;
pub mod knowledge;
pub mod openai_mock;
pub mod serve;
pub mod web;
pub mod webdriver;
pub mod widget;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use cortexlayer_server::app::AppState;
use cortexlayer_server::config::{Secret, Settings};
use cortexlayer_server::jobs::{Clock, Drained};
use reqwest::{Client, Response};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;

pub const PASSWORD: &str = "correct horse battery staple";
pub const JWT_SECRET: &str = "test-jwt-secret-0123456789abcdef0123456789";

/// A mail the app handed to SMTP.
#[derive(Clone, Debug)]
pub struct SentMail {
    pub to: String,
    pub subject: String,
    pub body: String,
}

pub struct TestApp {
    pub base: String,
    pub client: Client,
    pub state: AppState,
    /// The clock the job layer reads: the system's, moved forward by [`TestApp::advance`].
    pub clock: Arc<TestClock>,
    mails: Arc<Mutex<Vec<SentMail>>>,
}

/// The system clock plus an offset the test moves forward (never back, so jobs enqueued at
/// the system's time are always due on it).
#[derive(Default)]
pub struct TestClock {
    ahead_ms: std::sync::atomic::AtomicI64,
}

impl Clock for TestClock {
    fn now(&self) -> chrono::DateTime<chrono::Utc> {
        chrono::Utc::now()
            + chrono::Duration::milliseconds(
                self.ahead_ms.load(std::sync::atomic::Ordering::SeqCst),
            )
    }
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}).await
}

pub async fn spawn_app_with(configure: impl FnOnce(&mut Settings)) -> TestApp {
    let mails = Arc::new(Mutex::new(Vec::new()));
    let smtp_port = spawn_smtp(mails.clone()).await;
    let mut settings = Settings {
        database_url: Secret::new(test_database_url().await),
        jwt_secret: Secret::new(JWT_SECRET),
        app_url: "https://support.example".into(),
        ..Settings::default()
    };
    settings.smtp.url = Some(Secret::new(format!("smtp://127.0.0.1:{smtp_port}")));
    settings.data_dir =
        std::env::temp_dir().join(format!("cortex-api-data-{}", uuid::Uuid::now_v7()));
    settings.knowledge.model_dir = Some(model_dir());
    configure(&mut settings);
    let mut state = AppState::build(settings).await.expect("app state");
    // No background workers: each test runs the due jobs itself (`run_pending_jobs`), so what
    // it sees never depends on timing.
    let clock = Arc::new(TestClock::default());
    state.clock = clock.clone();
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let app = cortexlayer_server::http::router(state.clone());
    tokio::spawn(async move {
        axum::serve(
            listener,
            app.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .await
        .expect("serve");
    });
    TestApp {
        base: format!("http://{addr}"),
        client: Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("client"),
        state,
        clock,
        mails,
    }
}

/// The real local embedding model (scripts/test.sh fetches it and sets CORTEX_MODEL_DIR).
pub fn model_dir() -> std::path::PathBuf {
    std::env::var("CORTEX_MODEL_DIR")
        .expect("CORTEX_MODEL_DIR must name the all-MiniLM-L6-v2 folder; run ./scripts/test.sh, which fetches it")
        .into()
}

pub fn backend() -> String {
    std::env::var("CORTEX_TEST_BACKEND").unwrap_or_else(|_| "sqlite".into())
}

pub async fn test_database_url() -> String {
    if backend() == "postgres" {
        let base = std::env::var("TEST_DATABASE_URL").expect(
            "CORTEX_TEST_BACKEND=postgres needs TEST_DATABASE_URL; ./scripts/test.sh sets both",
        );
        cortex_store_postgres::testing::fresh_database(&base)
            .await
            .expect("fresh database")
    } else {
        let dir = std::env::temp_dir().join(format!("cortex-api-{}", uuid::Uuid::now_v7()));
        format!("sqlite://{}", dir.join("cortex.db").display())
    }
}

/// A minimal SMTP server: accepts everything and records each message.
async fn spawn_smtp(mails: Arc<Mutex<Vec<SentMail>>>) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind smtp");
    let port = listener.local_addr().expect("addr").port();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let mails = mails.clone();
            tokio::spawn(async move {
                let (read, mut write) = stream.into_split();
                let mut lines = BufReader::new(read).lines();
                let _ = write.write_all(b"220 test-smtp ready\r\n").await;
                let mut to = String::new();
                while let Ok(Some(line)) = lines.next_line().await {
                    let upper = line.to_ascii_uppercase();
                    let reply: &[u8] = if upper.starts_with("EHLO") || upper.starts_with("HELO") {
                        b"250-test-smtp\r\n250 8BITMIME\r\n"
                    } else if upper.starts_with("RCPT TO:") {
                        to = line[8..].trim().trim_matches(['<', '>']).to_owned();
                        b"250 ok\r\n"
                    } else if upper.starts_with("DATA") {
                        let _ = write.write_all(b"354 go ahead\r\n").await;
                        let mut raw = Vec::new();
                        while let Ok(Some(l)) = lines.next_line().await {
                            if l == "." {
                                break;
                            }
                            raw.push(l);
                        }
                        mails.lock().expect("lock").push(parse_mail(&to, &raw));
                        b"250 queued\r\n"
                    } else if upper.starts_with("QUIT") {
                        let _ = write.write_all(b"221 bye\r\n").await;
                        break;
                    } else {
                        b"250 ok\r\n"
                    };
                    if write.write_all(reply).await.is_err() {
                        break;
                    }
                }
            });
        }
    });
    port
}

fn parse_mail(to: &str, raw: &[String]) -> SentMail {
    let split = raw.iter().position(String::is_empty).unwrap_or(raw.len());
    let headers = &raw[..split];
    let subject = headers
        .iter()
        .find_map(|h| h.strip_prefix("Subject: "))
        .unwrap_or_default()
        .to_owned();
    let qp = headers
        .iter()
        .any(|h| h.to_ascii_lowercase().contains("quoted-printable"));
    let mut body = raw.get(split + 1..).unwrap_or_default().join("\n");
    if qp {
        body = decode_quoted_printable(&body);
    }
    // SMTP dot-stuffing.
    body = body.replace("\n..", "\n.");
    SentMail {
        to: to.to_owned(),
        subject,
        body,
    }
}

fn decode_quoted_printable(s: &str) -> String {
    let joined = s.replace("=\n", "");
    let bytes = joined.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'='
            && i + 2 < bytes.len()
            && let Ok(b) = u8::from_str_radix(&joined[i + 1..i + 3], 16)
        {
            out.push(b);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// A user's credentials and tokens after signing in.
#[derive(Clone, Debug)]
pub struct Member {
    pub user_id: String,
    pub tenant_id: String,
    pub access: String,
    pub refresh: String,
}

impl Member {
    fn from_session(v: &Value) -> Self {
        Member {
            user_id: v["user"]["id"].as_str().expect("user id").to_owned(),
            tenant_id: v["user"]["tenant_id"]
                .as_str()
                .expect("tenant id")
                .to_owned(),
            access: v["access_token"].as_str().expect("access").to_owned(),
            refresh: v["refresh_token"].as_str().expect("refresh").to_owned(),
        }
    }
}

impl TestApp {
    /// Runs every due job (and the ones they enqueue) until none is due, as the workers would,
    /// and fails the test if any attempt failed. Returns how many jobs ran.
    pub async fn run_pending_jobs(&self) -> u32 {
        let drained = self.run_pending_jobs_allowing_failures().await;
        assert!(
            drained.failed.is_empty(),
            "job attempts failed: {:?}",
            drained.failed
        );
        drained.done
    }

    /// [`TestApp::run_pending_jobs`] for tests whose jobs are meant to fail: what ran and what
    /// failed (failed attempts wait for their retry time; [`TestApp::advance`] brings it).
    pub async fn run_pending_jobs_allowing_failures(&self) -> Drained {
        cortexlayer_server::jobs::run_pending(&self.state)
            .await
            .expect("the job queue is readable")
    }

    /// Moves the job layer's clock `by` forward.
    pub fn advance(&self, by: chrono::Duration) {
        self.clock
            .ahead_ms
            .fetch_add(by.num_milliseconds(), std::sync::atomic::Ordering::SeqCst);
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub async fn post_json(&self, path: &str, body: &Value) -> Response {
        self.client
            .post(self.url(path))
            .json(body)
            .send()
            .await
            .expect("request")
    }

    /// `GET` without credentials, as a browser or a provider would.
    pub async fn get(&self, path: &str) -> Response {
        self.client
            .get(self.url(path))
            .send()
            .await
            .expect("request")
    }

    pub async fn get_as(&self, path: &str, token: &str) -> Response {
        self.client
            .get(self.url(path))
            .bearer_auth(token)
            .send()
            .await
            .expect("request")
    }

    pub async fn post_as(&self, path: &str, token: &str, body: &Value) -> Response {
        self.client
            .post(self.url(path))
            .bearer_auth(token)
            .json(body)
            .send()
            .await
            .expect("request")
    }

    pub async fn patch_as(&self, path: &str, token: &str, body: &Value) -> Response {
        self.client
            .patch(self.url(path))
            .bearer_auth(token)
            .json(body)
            .send()
            .await
            .expect("request")
    }

    pub async fn delete_as(&self, path: &str, token: &str) -> Response {
        self.client
            .delete(self.url(path))
            .bearer_auth(token)
            .send()
            .await
            .expect("request")
    }

    /// The OpenAPI document the server serves.
    pub async fn openapi(&self) -> Value {
        let r = self
            .client
            .get(self.url("/openapi.json"))
            .send()
            .await
            .expect("request");
        assert_eq!(r.status(), 200);
        r.json().await.expect("json")
    }

    /// Every mail sent so far to `to`.
    pub fn mails_to(&self, to: &str) -> Vec<SentMail> {
        self.mails
            .lock()
            .expect("lock")
            .iter()
            .filter(|m| m.to == to)
            .cloned()
            .collect()
    }

    /// Waits briefly for the SMTP exchange to land, then returns the last mail to `to`.
    pub async fn last_mail_to(&self, to: &str) -> SentMail {
        for _ in 0..100 {
            if let Some(m) = self.mails_to(to).pop() {
                return m;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        panic!("no mail to {to}");
    }

    /// Waits for the `n`th (1-based) mail to `to` whose subject contains `subject` and returns
    /// it (mails sent from a task of their own land a moment after the answer).
    pub async fn nth_mail_about(&self, to: &str, subject: &str, n: usize) -> SentMail {
        for _ in 0..250 {
            let found: Vec<SentMail> = self
                .mails_to(to)
                .into_iter()
                .filter(|m| m.subject.contains(subject))
                .collect();
            if let Some(m) = found.get(n - 1) {
                return m.clone();
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        panic!("no mail number {n} to {to} about {subject:?}");
    }

    pub async fn signup(&self, email: &str, company: &str) -> Response {
        self.post_json(
            "/api/v1/auth/signup",
            &json!({ "email": email, "password": PASSWORD, "company_name": company, "name": "Test Owner" }),
        )
        .await
    }

    /// Verifies with the code and the password every test signup uses.
    pub async fn verify(&self, email: &str, code: &str) -> Response {
        self.verify_with(email, code, PASSWORD).await
    }

    pub async fn verify_with(&self, email: &str, code: &str, password: &str) -> Response {
        self.post_json(
            "/api/v1/auth/verify-email",
            &json!({ "email": email, "code": code, "password": password }),
        )
        .await
    }

    pub async fn signup_with(&self, email: &str, company: &str, password: &str) -> Response {
        self.post_json(
            "/api/v1/auth/signup",
            &json!({ "email": email, "password": password, "company_name": company }),
        )
        .await
    }

    pub async fn login(&self, email: &str, password: &str) -> Response {
        self.post_json(
            "/api/v1/auth/login",
            &json!({ "email": email, "password": password }),
        )
        .await
    }

    pub async fn refresh(&self, token: &str) -> Response {
        self.post_json("/api/v1/auth/refresh", &json!({ "refresh_token": token }))
            .await
    }

    /// The code in the newest verification mail to `email`.
    pub async fn code_for(&self, email: &str) -> String {
        let mail = self.last_mail_to(email).await;
        code_in(&mail.body).unwrap_or_else(|| panic!("no code in {:?}", mail.body))
    }

    /// Signs up, verifies and returns the signed-in owner.
    pub async fn owner(&self, email: &str, company: &str) -> Member {
        assert_eq!(self.signup(email, company).await.status(), 202);
        let code = self.code_for(email).await;
        let r = self.verify(email, &code).await;
        assert_eq!(r.status(), 200);
        Member::from_session(&r.json().await.expect("json"))
    }

    /// Invites `email` with `role` as `by`; returns the token from the invitation mail.
    pub async fn invite(&self, by: &Member, email: &str, role: &str) -> String {
        let r = self
            .post_as(
                "/api/v1/invitations",
                &by.access,
                &json!({ "email": email, "role": role }),
            )
            .await;
        assert_eq!(r.status(), 201, "{}", r.text().await.unwrap_or_default());
        let mail = self.last_mail_to(email).await;
        token_in(&mail.body).unwrap_or_else(|| panic!("no token in {:?}", mail.body))
    }

    pub async fn accept(&self, token: &str) -> Response {
        self.post_json(
            "/api/v1/auth/invitations/accept",
            &json!({ "token": token, "password": PASSWORD, "name": "New Member" }),
        )
        .await
    }

    /// Invites and accepts: a new signed-in member of `by`'s tenant.
    pub async fn member(&self, by: &Member, email: &str, role: &str) -> Member {
        let token = self.invite(by, email, role).await;
        let r = self.accept(&token).await;
        assert_eq!(r.status(), 201);
        Member::from_session(&r.json().await.expect("json"))
    }

    pub async fn session_of(r: Response) -> Member {
        Member::from_session(&r.json().await.expect("json"))
    }

    /// Creates an API key as `by` and returns (id, full key).
    pub async fn api_key(&self, by: &Member, scopes: &[&str]) -> (String, String) {
        let r = self
            .post_as(
                "/api/v1/api-keys",
                &by.access,
                &json!({ "name": "integration", "scopes": scopes }),
            )
            .await;
        assert_eq!(r.status(), 201);
        let v: Value = r.json().await.expect("json");
        (
            v["api_key"]["id"].as_str().expect("id").to_owned(),
            v["key"].as_str().expect("key").to_owned(),
        )
    }

    /// Creates a platform admin the way `cortexlayer admin create` does and signs in.
    pub async fn operator(&self, email: &str) -> String {
        cortexlayer_server::tenancy::operators::create_admin(&self.state, email, PASSWORD.into())
            .await
            .expect("create admin");
        let r = self
            .post_json(
                "/api/v1/auth/admin/login",
                &json!({ "email": email, "password": PASSWORD }),
            )
            .await;
        assert_eq!(r.status(), 200);
        let v: Value = r.json().await.expect("json");
        v["access_token"].as_str().expect("token").to_owned()
    }

    pub async fn audit_actions(&self, by: &Member) -> Vec<String> {
        let r = self.get_as("/api/v1/audit-events", &by.access).await;
        assert_eq!(r.status(), 200);
        let v: Value = r.json().await.expect("json");
        v["data"]
            .as_array()
            .expect("data")
            .iter()
            .map(|e| e["action"].as_str().expect("action").to_owned())
            .collect()
    }
}

pub fn code_in(body: &str) -> Option<String> {
    let i = body.find("code is ")? + "code is ".len();
    Some(body.get(i..i + 6)?.to_owned())
}

pub fn token_in(body: &str) -> Option<String> {
    let i = body.find("token=")? + "token=".len();
    let rest = &body[i..];
    Some(rest[..rest.find(|c: char| c.is_whitespace()).unwrap_or(rest.len())].to_owned())
}

/// The error code of an error response.
pub async fn error_code(r: Response) -> (u16, String) {
    let status = r.status().as_u16();
    let v: Value = r.json().await.expect("error body is JSON");
    (
        status,
        v["error"]["code"].as_str().expect("code").to_owned(),
    )
}

/// A stand-in HTTP proxy on loopback: records the request line of every request it gets and
/// answers each with one small HTML page.
pub async fn spawn_recording_proxy() -> (String, Arc<Mutex<Vec<String>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind proxy");
    let addr = listener.local_addr().expect("addr");
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let log = log.clone();
            tokio::spawn(async move {
                let (read, mut write) = stream.into_split();
                let mut lines = BufReader::new(read).lines();
                let Ok(Some(first)) = lines.next_line().await else {
                    return;
                };
                log.lock().expect("lock").push(first);
                while let Ok(Some(line)) = lines.next_line().await {
                    if line.is_empty() {
                        break;
                    }
                }
                let page = "<html><head><title>Through the proxy</title></head><body><p>This page came through the operator's egress proxy.</p></body></html>";
                let reply = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: text/html\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{page}",
                    page.len()
                );
                let _ = write.write_all(reply.as_bytes()).await;
            });
        }
    });
    (format!("http://{addr}"), seen)
}
