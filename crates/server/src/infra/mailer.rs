//! Outgoing email. Over SMTP when `SMTP_URL` is set; otherwise, in development only, the mail
//! is written to the log so a developer can read the code, and kept in a small in-memory
//! mailbox that the development mail page (`GET /dev/mail`, loopback only) shows. The log line
//! names the kind of mail and the user id, never the recipient's address.

use std::time::Duration;

use async_trait::async_trait;
use cortex_core::tenancy::Email;
use lettre::message::header::ContentType;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

/// One mail to one recipient.
#[derive(Clone, Debug)]
pub struct Mail {
    pub to: Email,
    /// Stable name for logs (`verification_code`, `invitation`, `account_exists`).
    pub kind: &'static str,
    /// Who the mail is about, for logs (a user or invitation id).
    pub about: String,
    pub subject: String,
    pub body: String,
}

#[async_trait]
pub trait Mailer: Send + Sync {
    async fn send(&self, mail: Mail) -> anyhow::Result<()>;

    /// The mails this mailer kept instead of sending, newest first: only the development
    /// mailer keeps any.
    fn kept(&self) -> Option<Vec<KeptMail>> {
        None
    }
}

/// A mail the development mailer kept, with when.
#[derive(Clone, Debug)]
pub struct KeptMail {
    pub at: chrono::DateTime<chrono::Utc>,
    pub mail: Mail,
}

/// Development: logs the mail instead of sending it, and keeps the latest
/// [`LogMailer::KEPT`] for the development mail page.
#[derive(Default)]
pub struct LogMailer {
    kept: std::sync::Mutex<std::collections::VecDeque<KeptMail>>,
}

impl LogMailer {
    pub const KEPT: usize = 50;
}

#[async_trait]
impl Mailer for LogMailer {
    fn kept(&self) -> Option<Vec<KeptMail>> {
        let kept = self.kept.lock().unwrap_or_else(|e| e.into_inner());
        Some(kept.iter().rev().cloned().collect())
    }

    async fn send(&self, mail: Mail) -> anyhow::Result<()> {
        {
            let mut kept = self.kept.lock().unwrap_or_else(|e| e.into_inner());
            if kept.len() == Self::KEPT {
                kept.pop_front();
            }
            kept.push_back(KeptMail {
                at: chrono::Utc::now(),
                mail: mail.clone(),
            });
        }
        tracing::info!(
            mail.kind = mail.kind,
            mail.about = %mail.about,
            "development mode, SMTP_URL unset: mail not sent\n--- {} ---\n{}\n---",
            mail.subject,
            mail.body
        );
        Ok(())
    }
}

/// Sends through an SMTP server.
pub struct SmtpMailer {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: lettre::message::Mailbox,
}

impl SmtpMailer {
    /// `url` as lettre understands it: `smtp://[user:pass@]host[:port]` (STARTTLS when offered
    /// is not forced; add `?tls=required`), `smtps://…` for implicit TLS.
    pub fn new(url: &str, from: &str) -> anyhow::Result<Self> {
        let transport = AsyncSmtpTransport::<Tokio1Executor>::from_url(url)?
            .timeout(Some(Duration::from_secs(15)))
            .build();
        Ok(Self {
            transport,
            from: from.parse()?,
        })
    }
}

#[async_trait]
impl Mailer for SmtpMailer {
    async fn send(&self, mail: Mail) -> anyhow::Result<()> {
        let message = Message::builder()
            .from(self.from.clone())
            .to(mail.to.as_str().parse()?)
            .subject(mail.subject)
            .header(ContentType::TEXT_PLAIN)
            .body(mail.body)?;
        self.transport.send(message).await?;
        tracing::info!(mail.kind = mail.kind, mail.about = %mail.about, "mail sent");
        Ok(())
    }
}
