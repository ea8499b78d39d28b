//! Outgoing email. Over SMTP when `SMTP_URL` is set; otherwise, in development only, the mail
//! is written to the log so a developer can read the code. The log line names the kind of mail
//! and the user id, never the recipient's address.

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
}

/// Development: logs the mail instead of sending it.
pub struct LogMailer;

#[async_trait]
impl Mailer for LogMailer {
    async fn send(&self, mail: Mail) -> anyhow::Result<()> {
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
