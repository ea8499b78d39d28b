//! A small W3C WebDriver client over HTTP for the browser tests: headless Chromium driven by
//! `chromedriver` (Debian's `chromium` and `chromium-driver`, installed by
//! `scripts/browser-deps.sh`, named by CORTEX_CHROMIUM and CORTEX_CHROMEDRIVER).

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";
const SHADOW: &str = "shadow-6066-11e4-a52e-4f735466cecf";

pub struct Browser {
    driver: Child,
    http: reqwest::Client,
    base: String,
    profile: std::path::PathBuf,
}

/// A node: in the document or in a shadow root.
#[derive(Clone, Debug)]
pub struct Element(String);

#[derive(Clone, Debug)]
pub struct ShadowRoot(String);

fn var(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!(
            "{name} must name the binary; run ./scripts/test.sh, which installs headless Chromium"
        )
    })
}

impl Browser {
    /// Starts chromedriver and a headless Chromium session.
    pub async fn start() -> Self {
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").expect("port");
            l.local_addr().expect("addr").port()
        };
        let driver = Command::new(var("CORTEX_CHROMEDRIVER"))
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start chromedriver");
        let http = reqwest::Client::new();
        let base = format!("http://127.0.0.1:{port}");
        let start = Instant::now();
        loop {
            let ready = http
                .get(format!("{base}/status"))
                .send()
                .await
                .ok()
                .and_then(|r| r.status().is_success().then_some(()))
                .is_some();
            if ready {
                break;
            }
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "chromedriver did not start"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let profile =
            std::env::temp_dir().join(format!("cortex-chromium-{}", uuid::Uuid::now_v7()));
        let mut b = Self {
            driver,
            http,
            base,
            profile,
        };
        let args = [
            "--headless=new".to_owned(),
            "--no-sandbox".to_owned(),
            "--disable-gpu".to_owned(),
            "--disable-dev-shm-usage".to_owned(),
            "--no-first-run".to_owned(),
            format!("--user-data-dir={}", b.profile.display()),
        ];
        let v = b
            .call(
                reqwest::Method::POST,
                "/session",
                json!({ "capabilities": { "alwaysMatch": {
                    "browserName": "chrome",
                    "goog:chromeOptions": { "binary": var("CORTEX_CHROMIUM"), "args": args }
                } } }),
            )
            .await;
        let session = v["sessionId"].as_str().expect("a session").to_owned();
        b.base = format!("{}/session/{session}", b.base);
        b
    }

    async fn call(&self, method: reqwest::Method, path: &str, body: Value) -> Value {
        let url = format!("{}{path}", self.base);
        let mut r = self.http.request(method.clone(), &url);
        if method != reqwest::Method::GET && method != reqwest::Method::DELETE {
            r = r.json(&body);
        }
        let response = r.send().await.expect("webdriver");
        let status = response.status();
        let v: Value = response.json().await.expect("webdriver json");
        assert!(status.is_success(), "{method} {path}: {status} {v}");
        v["value"].clone()
    }

    async fn try_call(&self, path: &str, body: Value) -> Option<Value> {
        let response = self
            .http
            .post(format!("{}{path}", self.base))
            .json(&body)
            .send()
            .await
            .ok()?;
        if !response.status().is_success() {
            return None;
        }
        response
            .json::<Value>()
            .await
            .ok()
            .map(|v| v["value"].clone())
    }

    pub async fn goto(&self, url: &str) {
        self.call(reqwest::Method::POST, "/url", json!({ "url": url }))
            .await;
    }

    /// Sets the window's outer size.
    pub async fn resize(&self, width: u32, height: u32) {
        self.call(
            reqwest::Method::POST,
            "/window/rect",
            json!({ "width": width, "height": height }),
        )
        .await;
    }

    pub async fn refresh(&self) {
        self.call(reqwest::Method::POST, "/refresh", json!({}))
            .await;
    }

    /// Waits up to `timeout` for the document's element matching `css`.
    pub async fn wait_for(&self, css: &str, timeout: Duration) -> Element {
        let start = Instant::now();
        loop {
            if let Some(v) = self
                .try_call("/element", json!({ "using": "css selector", "value": css }))
                .await
            {
                return Element(v[ELEMENT].as_str().expect("element").to_owned());
            }
            assert!(start.elapsed() < timeout, "no {css} after {timeout:?}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub async fn shadow(&self, host: &Element) -> ShadowRoot {
        let v = self
            .call(
                reqwest::Method::GET,
                &format!("/element/{}/shadow", host.0),
                Value::Null,
            )
            .await;
        ShadowRoot(v[SHADOW].as_str().expect("shadow root").to_owned())
    }

    /// The elements matching `css` in the shadow root, in document order.
    pub async fn find_all(&self, root: &ShadowRoot, css: &str) -> Vec<Element> {
        let v = self
            .call(
                reqwest::Method::POST,
                &format!("/shadow/{}/elements", root.0),
                json!({ "using": "css selector", "value": css }),
            )
            .await;
        v.as_array()
            .into_iter()
            .flatten()
            .filter_map(|e| e[ELEMENT].as_str().map(|s| Element(s.to_owned())))
            .collect()
    }

    pub async fn find(&self, root: &ShadowRoot, css: &str) -> Element {
        self.find_all(root, css)
            .await
            .into_iter()
            .next()
            .unwrap_or_else(|| panic!("no {css} in the shadow root"))
    }

    pub async fn click(&self, e: &Element) {
        self.call(
            reqwest::Method::POST,
            &format!("/element/{}/click", e.0),
            json!({}),
        )
        .await;
    }

    pub async fn type_text(&self, e: &Element, text: &str) {
        self.call(
            reqwest::Method::POST,
            &format!("/element/{}/value", e.0),
            json!({ "text": text }),
        )
        .await;
    }

    pub async fn text(&self, e: &Element) -> String {
        self.call(
            reqwest::Method::GET,
            &format!("/element/{}/text", e.0),
            Value::Null,
        )
        .await
        .as_str()
        .unwrap_or_default()
        .to_owned()
    }

    pub async fn attribute(&self, e: &Element, name: &str) -> Option<String> {
        self.call(
            reqwest::Method::GET,
            &format!("/element/{}/attribute/{name}", e.0),
            Value::Null,
        )
        .await
        .as_str()
        .map(str::to_owned)
    }

    /// The element that has the keyboard focus, as seen from inside `host`'s shadow root.
    pub async fn focused_in_shadow_id(&self) -> Option<String> {
        let v = self
            .call(
                reqwest::Method::POST,
                "/execute/sync",
                json!({ "script": "var h=document.getElementById('cortexlayer-widget');var a=h&&h.shadowRoot.activeElement;return a?(a.id||a.className):null;", "args": [] }),
            )
            .await;
        v.as_str().map(str::to_owned)
    }

    /// Runs `script` in the page (a function body; a returned promise is awaited) with `args`.
    pub async fn execute(&self, script: &str, args: Value) -> Value {
        self.call(
            reqwest::Method::POST,
            "/execute/sync",
            json!({ "script": script, "args": args }),
        )
        .await
    }

    /// Runs axe-core (vendored under `tests/vendor/`, never shipped) on the page as it is,
    /// open shadow roots included, and returns its serious and critical violations as
    /// `rule: the nodes' selectors` lines; empty when there are none.
    pub async fn accessibility_violations(&self) -> Vec<String> {
        const AXE: &str = include_str!("../../vendor/axe-core-4.14.1/axe.min.js");
        // Sent once per page: checking again after a click reuses it.
        if self
            .execute("return typeof axe === 'undefined';", json!([]))
            .await
            == json!(true)
        {
            self.execute(&format!("{AXE}\nreturn true;"), json!([]))
                .await;
        }
        let found = self
            .execute(
                "return axe.run(document, { resultTypes: ['violations'] }).then(r => \
                 r.violations.filter(v => v.impact === 'serious' || v.impact === 'critical') \
                 .map(v => v.id + ' (' + v.impact + '): ' + v.help + ' at ' + \
                 v.nodes.map(n => JSON.stringify(n.target)).join(', ')));",
                json!([]),
            )
            .await;
        found
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|v| v.as_str().map(str::to_owned))
            .collect()
    }

    /// Saves a PNG of the viewport as `<name>.png` in the tests' output folder
    /// (`target/tmp/screenshots/`, not committed) and returns its path.
    pub async fn screenshot(&self, name: &str) -> std::path::PathBuf {
        use base64::Engine;
        let v = self
            .call(reqwest::Method::GET, "/screenshot", Value::Null)
            .await;
        let png = base64::engine::general_purpose::STANDARD
            .decode(v.as_str().expect("a base64 PNG"))
            .expect("base64");
        let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("screenshots");
        std::fs::create_dir_all(&dir).expect("screenshot folder");
        let path = dir.join(format!("{name}.png"));
        std::fs::write(&path, png).expect("write the screenshot");
        path
    }

    pub async fn quit(mut self) {
        let _ = self.http.delete(&self.base).send().await;
        let _ = self.driver.kill();
        let _ = self.driver.wait();
        let _ = std::fs::remove_dir_all(&self.profile);
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.driver.kill();
    }
}
