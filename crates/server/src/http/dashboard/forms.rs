//! Forms of the signed-out pages (and small forms elsewhere): fields with their label, hint
//! and error, and how a domain error lands on them — a validation error next to the field it
//! names, anything else above the form, in words.

use askama::Template;
use axum::http::StatusCode;
use axum::response::IntoResponse;

use super::pages::Chrome;
use crate::http::error::ApiError;
use crate::tenancy::TenancyError;

/// A form with no field but its CSRF token (a button that signs out, revokes, deletes…).
#[derive(serde::Deserialize)]
pub struct Empty {}

pub struct Field {
    pub name: &'static str,
    pub label: &'static str,
    pub kind: &'static str,
    pub value: String,
    pub autocomplete: &'static str,
    pub inputmode: &'static str,
    pub required: bool,
    pub hint: String,
    pub error: String,
}

impl Field {
    fn new(name: &'static str, label: &'static str, kind: &'static str) -> Self {
        Self {
            name,
            label,
            kind,
            value: String::new(),
            autocomplete: "off",
            inputmode: "",
            required: true,
            hint: String::new(),
            error: String::new(),
        }
    }

    pub fn text(
        name: &'static str,
        label: &'static str,
        value: &str,
        autocomplete: &'static str,
    ) -> Self {
        Self {
            value: value.to_owned(),
            autocomplete,
            ..Self::new(name, label, "text")
        }
    }

    pub fn email(value: &str) -> Self {
        Self {
            value: value.trim().to_owned(),
            autocomplete: "email",
            ..Self::new("email", "Email", "email")
        }
    }

    /// A password field never shows what was typed.
    pub fn password(name: &'static str, label: &'static str, autocomplete: &'static str) -> Self {
        Self {
            autocomplete,
            ..Self::new(name, label, "password")
        }
    }

    pub fn code(value: &str) -> Self {
        Self {
            value: value.trim().to_owned(),
            autocomplete: "one-time-code",
            inputmode: "numeric",
            hint: "6 digits, from the mail.".into(),
            ..Self::new("code", "Verification code", "text")
        }
    }

    pub fn optional(mut self) -> Self {
        self.required = false;
        self.label = match self.label {
            "Your name" => "Your name (optional)",
            other => other,
        };
        self
    }

    pub fn hint(mut self, hint: &str) -> Self {
        self.hint = hint.to_owned();
        self
    }

    /// The ids of the hint and the error, for `aria-describedby`.
    pub fn described_by(&self) -> String {
        let mut ids = Vec::new();
        if !self.hint.is_empty() {
            ids.push(format!("f-{}-hint", self.name));
        }
        if !self.error.is_empty() {
            ids.push(format!("f-{}-error", self.name));
        }
        ids.join(" ")
    }
}

pub struct Form {
    pub title: &'static str,
    pub lead: String,
    pub notice: String,
    /// Whether the notice links the development mailbox.
    pub dev_mailbox: bool,
    pub error: String,
    pub action: &'static str,
    pub hidden: Vec<(&'static str, String)>,
    pub fields: Vec<Field>,
    pub submit: &'static str,
    /// (text before, href, link text)
    pub links: Vec<(&'static str, &'static str, &'static str)>,
}

impl Form {
    pub fn new(title: &'static str, action: &'static str, submit: &'static str) -> Self {
        Self {
            title,
            lead: String::new(),
            notice: String::new(),
            dev_mailbox: false,
            error: String::new(),
            action,
            hidden: Vec::new(),
            fields: Vec::new(),
            submit,
            links: Vec::new(),
        }
    }

    pub fn lead(mut self, lead: &str) -> Self {
        self.lead = lead.to_owned();
        self
    }

    pub fn hidden(mut self, name: &'static str, value: &str) -> Self {
        self.hidden.push((name, value.to_owned()));
        self
    }

    pub fn field(mut self, f: Field) -> Self {
        self.fields.push(f);
        self
    }

    pub fn link(mut self, before: &'static str, href: &'static str, text: &'static str) -> Self {
        self.links.push((before, href, text));
        self
    }

    /// Puts a domain error on the form and answers the status to send it with.
    pub fn fail(&mut self, e: TenancyError) -> StatusCode {
        match e {
            TenancyError::Validation { field, message } => {
                let label = match self.fields.iter_mut().find(|f| f.name == field) {
                    Some(f) => {
                        f.error = sentence(&message);
                        f.label
                    }
                    None => field,
                };
                self.error = format!("{label}: {}.", message.trim().trim_end_matches('.'));
                StatusCode::UNPROCESSABLE_ENTITY
            }
            other => {
                let (status, words) = in_words(other);
                self.error = words;
                status
            }
        }
    }
}

/// A domain error other than a field's, in words for above a form, with its status. A server
/// error's cause is logged, never shown.
pub fn in_words(e: TenancyError) -> (StatusCode, String) {
    match e {
        TenancyError::RateLimited { retry_after_secs } => {
            let minutes = retry_after_secs.div_ceil(60).max(1);
            (
                StatusCode::TOO_MANY_REQUESTS,
                format!(
                    "Too many attempts from here. Try again in {minutes} minute{}.",
                    if minutes == 1 { "" } else { "s" }
                ),
            )
        }
        other => {
            let e = ApiError::from(other);
            let status = e.status;
            let words = if status.is_server_error() {
                drop(e.into_response()); // logs the cause
                "The server could not finish this. Try again in a moment.".into()
            } else {
                sentence(&e.message)
            };
            (status, words)
        }
    }
}

/// The first instant (UTC) of the day a `YYYY-MM-DD` filter names.
pub fn utc_day(raw: &str) -> Option<chrono::DateTime<chrono::Utc>> {
    let d = chrono::NaiveDate::parse_from_str(raw.trim(), "%Y-%m-%d").ok()?;
    Some(d.and_hms_opt(0, 0, 0)?.and_utc())
}

/// The query string of a list's next page: its cursor, then each filter that is set.
pub fn next_page_query(before: String, filters: &[(&str, Option<&str>)]) -> String {
    let mut query: Vec<(&str, &str)> = vec![("before", &before)];
    query.extend(
        filters
            .iter()
            .filter_map(|(k, v)| v.filter(|v| !v.is_empty()).map(|v| (*k, v))),
    );
    serde_urlencoded::to_string(query).unwrap_or_default()
}

/// A message as a sentence: capital first letter, final full stop.
pub fn sentence(message: &str) -> String {
    let mut s = message.trim().to_owned();
    if let Some(first) = s.get(..1) {
        let upper = first.to_uppercase();
        s.replace_range(..1, &upper);
    }
    if !s.ends_with(['.', '!', '?']) {
        s.push('.');
    }
    s
}

#[derive(Template)]
#[template(path = "form_page.html")]
pub struct FormPage {
    pub chrome: Chrome,
    pub form: Form,
}
