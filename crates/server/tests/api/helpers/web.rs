//! A browser over plain HTTP for the dashboard's pages: it keeps the cookies the server sets
//! (whatever their `Secure` flag, as Chromium does for a loopback address), sends them back,
//! and submits forms with the CSRF token of the page it saw last.

use std::collections::BTreeMap;
use std::sync::Mutex;

use super::TestApp;

/// A page (or redirect) as the browser received it.
#[derive(Debug)]
pub struct Page {
    pub status: u16,
    /// Where a redirect goes.
    pub location: Option<String>,
    /// The raw `Set-Cookie` headers.
    pub set_cookies: Vec<String>,
    pub headers: reqwest::header::HeaderMap,
    pub html: String,
}

impl Page {
    /// The `Set-Cookie` header of cookie `name`.
    pub fn cookie(&self, name: &str) -> Option<&str> {
        self.set_cookies
            .iter()
            .find(|c| c.starts_with(&format!("{name}=")))
            .map(String::as_str)
    }
}

pub struct Web<'a> {
    app: &'a TestApp,
    cookies: Mutex<BTreeMap<String, String>>,
    csrf: Mutex<String>,
}

/// The CSRF token a page's `<meta name="csrf-token">` carries.
pub fn csrf_in(html: &str) -> Option<String> {
    let i = html.find("name=\"csrf-token\" content=\"")? + "name=\"csrf-token\" content=\"".len();
    let rest = &html[i..];
    Some(rest[..rest.find('"')?].to_owned())
}

impl<'a> Web<'a> {
    pub fn new(app: &'a TestApp) -> Self {
        Self {
            app,
            cookies: Mutex::new(BTreeMap::new()),
            csrf: Mutex::new(String::new()),
        }
    }

    fn cookie_header(&self) -> String {
        self.cookies
            .lock()
            .expect("lock")
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    async fn receive(&self, r: reqwest::Response) -> Page {
        let status = r.status().as_u16();
        let location = r
            .headers()
            .get("location")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let set_cookies: Vec<String> = r
            .headers()
            .get_all("set-cookie")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .map(str::to_owned)
            .collect();
        {
            let mut jar = self.cookies.lock().expect("lock");
            for c in &set_cookies {
                let pair = c.split(';').next().unwrap_or_default();
                if let Some((k, v)) = pair.split_once('=') {
                    let expired = c.contains("Max-Age=0");
                    if v.is_empty() || expired {
                        jar.remove(k);
                    } else {
                        jar.insert(k.to_owned(), v.to_owned());
                    }
                }
            }
        }
        let headers = r.headers().clone();
        let html = r.text().await.unwrap_or_default();
        if let Some(csrf) = csrf_in(&html).filter(|c| !c.is_empty()) {
            *self.csrf.lock().expect("lock") = csrf;
        }
        Page {
            status,
            location,
            set_cookies,
            headers,
            html,
        }
    }

    pub async fn get(&self, path: &str) -> Page {
        let r = self
            .app
            .client
            .get(self.app.url(path))
            .header("cookie", self.cookie_header())
            .send()
            .await
            .expect("get");
        self.receive(r).await
    }

    /// Posts `fields` as a form with the last page's CSRF token.
    pub async fn submit(&self, path: &str, fields: &[(&str, &str)]) -> Page {
        let csrf = self.csrf();
        let mut all: Vec<(&str, &str)> = vec![("csrf", csrf.as_str())];
        all.extend_from_slice(fields);
        self.post_raw(path, &all, &[]).await
    }

    /// Posts exactly `fields` (no token added) with extra `headers`.
    pub async fn post_raw(
        &self,
        path: &str,
        fields: &[(&str, &str)],
        headers: &[(&str, &str)],
    ) -> Page {
        let mut req = self
            .app
            .client
            .post(self.app.url(path))
            .header("cookie", self.cookie_header())
            .form(fields);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        self.receive(req.send().await.expect("post")).await
    }

    /// Posts a multipart form (cookies sent, nothing added) with extra `headers`.
    pub async fn post_multipart(
        &self,
        path: &str,
        form: reqwest::multipart::Form,
        headers: &[(&str, &str)],
    ) -> Page {
        let mut req = self
            .app
            .client
            .post(self.app.url(path))
            .header("cookie", self.cookie_header())
            .multipart(form);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        self.receive(req.send().await.expect("post")).await
    }

    /// The value of a cookie this browser holds.
    pub fn cookie_value(&self, name: &str) -> Option<String> {
        self.cookies.lock().expect("lock").get(name).cloned()
    }

    /// The CSRF token of the last page seen.
    pub fn csrf(&self) -> String {
        self.csrf.lock().expect("lock").clone()
    }

    /// Signs up through the pages and verifies with the mailed code: a signed-in owner.
    pub async fn sign_up(&self, email: &str, company: &str) -> Page {
        self.get("/sign-up").await;
        let page = self
            .submit(
                "/sign-up",
                &[
                    ("company_name", company),
                    ("name", "Web Owner"),
                    ("email", email),
                    ("password", super::PASSWORD),
                ],
            )
            .await;
        assert_eq!(page.status, 200, "{}", page.html);
        let code = self.app.code_for(email).await;
        self.submit(
            "/verify",
            &[
                ("email", email),
                ("code", &code),
                ("password", super::PASSWORD),
            ],
        )
        .await
    }

    /// Signs in through the sign-in page.
    pub async fn sign_in(&self, email: &str, password: &str) -> Page {
        self.get("/sign-in").await;
        self.submit("/sign-in", &[("email", email), ("password", password)])
            .await
    }
}
