//! Documents from the web: one URL, or a crawl of the same site's links from it up to a depth
//! and a page budget, honouring robots.txt. Every fetch goes through the SSRF guard
//! ([`crate::infra::fetch`]).
//!
//! The `FetchUrl` job fetches the start page, stores it as the document's original and hands
//! it to `ParseDocument`. When crawling, the same job then walks the site breadth-first; each
//! page becomes a document of its own (with its own parse job). Page documents get ids derived
//! from the start document and their URL, so a crawl that is retried after a crash finds the
//! pages it already created instead of duplicating them.

use std::collections::{HashSet, VecDeque};

use chrono::Utc;
use cortex_core::StoreError;
use cortex_core::ids::{DocumentId, TenantId};
use cortex_core::knowledge::{Document, DocumentSource, DocumentStage, NewDocument, Original};
use cortex_core::plans::Plan;
use cortex_core::store::conflict;
use cortex_ingest::{DocKind, html_links, sniff};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use url::Url;

use super::jobs::{fetch_job, parse_job};
use super::pipeline::{DocumentJob, Failure, current, fail, settled, tenant_plan};
use super::{Result, blob_key, invalid, limit_or};
use crate::app::AppState;
use crate::infra::fetch::{FetchError, Fetcher};
use crate::jobs::JobError;
use crate::tenancy::Action;
use crate::tenancy::TenantCtx;

pub const MAX_DEPTH: u32 = 3;
pub const MAX_PAGES: u32 = 100;
/// robots.txt files larger than this are read only this far.
const MAX_ROBOTS_BYTES: u64 = 512 * 1024;
/// The name robots.txt groups may address us by.
const ROBOTS_AGENT: &str = "cortexlayerbot";

/// What a `FetchUrl` job fetches: one run of a URL document, and how far to crawl from it.
#[derive(Clone, Copy, Debug, Serialize, Deserialize)]
pub struct FetchArgs {
    pub document_id: DocumentId,
    pub generation: u32,
    pub max_depth: u32,
    pub max_pages: u32,
}

/// Adds the page at `raw_url` (and, with `max_depth > 0`, the same site's pages it links to,
/// up to `max_pages` documents in all). Answers at once; fetching runs in the background.
pub async fn add_url(
    state: &AppState,
    ctx: &TenantCtx,
    raw_url: &str,
    max_depth: u32,
    max_pages: u32,
) -> Result<Document> {
    ctx.require(Action::WriteKnowledge)?;
    let url = Fetcher::check_url(raw_url).map_err(|e| invalid("url", e))?;
    if max_depth > MAX_DEPTH {
        return Err(invalid("max_depth", format!("at most {MAX_DEPTH}")));
    }
    if !(1..=MAX_PAGES).contains(&max_pages) {
        return Err(invalid("max_pages", format!("between 1 and {MAX_PAGES}")));
    }
    let plan = ctx.plan();
    let id = DocumentId::new();
    let doc = NewDocument {
        id,
        title: url.to_string(),
        filename: None,
        source: DocumentSource::Url,
        source_url: Some(url.to_string()),
        kind: "url".into(),
        size_bytes: 0,
        sha256: String::new(),
        blob_key: None,
        created_at: Utc::now(),
    };
    let created = state
        .store
        .create_document(
            ctx.tenant_id(),
            doc,
            fetch_job(id, 1, max_depth, max_pages),
            plan.max_documents,
        )
        .await
        .map_err(|e| limit_or(e, plan))?;
    state.jobs_ready.notify_waiters();
    Ok(created)
}

/// The `FetchUrl` job.
pub(super) async fn run(
    state: &AppState,
    tenant: TenantId,
    args: FetchArgs,
) -> std::result::Result<(), JobError> {
    let job = DocumentJob {
        document_id: args.document_id,
        generation: args.generation,
    };
    let Some(doc) = current(state, tenant, &job).await? else {
        return Ok(());
    };
    let plan = tenant_plan(state, tenant).await;
    let Some(start) = doc.source_url.as_deref().and_then(|u| Url::parse(u).ok()) else {
        return fail(
            state,
            tenant,
            &job,
            Failure::new("invalid_url", "the document has no URL"),
        )
        .await;
    };
    let page = if doc.blob_key.is_none() {
        if !settled(
            state
                .store
                .set_document_stage(tenant, doc.id, job.generation, DocumentStage::Fetching, 5)
                .await,
        )? {
            return Ok(());
        }
        let robots = Robots::fetch(&state.fetcher, &start).await;
        if !robots.allows(&start) {
            let f = Failure::new(
                "blocked_by_robots",
                "the site's robots.txt does not allow fetching this page",
            );
            return fail(state, tenant, &job, f).await;
        }
        match fetch_page(state, &start, &plan).await {
            Ok(page) => {
                let original = Original {
                    kind: page.kind.as_str().to_owned(),
                    size_bytes: page.bytes.len() as u64,
                    sha256: hex::encode(Sha256::digest(&page.bytes)),
                    blob_key: blob_key(tenant, doc.id),
                    title: page.title.clone(),
                    source_url: Some(page.url.to_string()),
                };
                state
                    .blobs
                    .put(&original.blob_key, page.bytes.clone())
                    .await
                    .map_err(|e| JobError::retry_because("storing the page", e))?;
                if !settled(
                    state
                        .store
                        .attach_original(
                            tenant,
                            doc.id,
                            job.generation,
                            original,
                            parse_job(doc.id, job.generation),
                        )
                        .await,
                )? {
                    return Ok(());
                }
                state.jobs_ready.notify_waiters();
                Some(page)
            }
            Err(PageError::Retry(m)) => return Err(JobError::retry(m)),
            Err(PageError::Fail(f)) => return fail(state, tenant, &job, f).await,
        }
    } else {
        // Fetched by an earlier attempt that died while crawling: crawl again from the stored
        // page (pages already created are found by their derived ids).
        let bytes = state
            .blobs
            .get(doc.blob_key.as_deref().unwrap_or_default())
            .await
            .ok();
        bytes.and_then(|bytes| {
            let kind = sniff(&bytes, None).ok()?;
            Some(Page {
                url: start.clone(),
                kind,
                title: None,
                bytes,
            })
        })
    };
    if let Some(page) = page
        && args.max_depth > 0
        && page.kind == DocKind::Html
    {
        crawl(state, tenant, &doc, page, &args, &plan).await?;
    }
    Ok(())
}

struct Page {
    url: Url,
    kind: DocKind,
    title: Option<String>,
    bytes: Vec<u8>,
}

enum PageError {
    Retry(String),
    Fail(Failure),
}

/// Fetches and sniffs one page.
async fn fetch_page(
    state: &AppState,
    url: &Url,
    plan: &Plan,
) -> std::result::Result<Page, PageError> {
    let fetched = state
        .fetcher
        .get(url, plan.max_file_bytes)
        .await
        .map_err(|e| match e {
            e if e.is_transient() => PageError::Retry(e.to_string()),
            FetchError::TooLarge(limit) => PageError::Fail(Failure::new(
                "file_too_large",
                format!(
                    "the page is larger than the {} plan's {limit} bytes",
                    plan.name
                ),
            )),
            e => PageError::Fail(Failure::new(e.code(), e.to_string())),
        })?;
    let name = fetched
        .url
        .path_segments()
        .and_then(|mut s| s.next_back())
        .filter(|n| n.contains('.'))
        .map(str::to_owned);
    let kind = sniff(&fetched.bytes, name.as_deref())
        .or_else(|_| sniff(&fetched.bytes, None))
        .map_err(|e| PageError::Fail(Failure::new("unsupported_media_type", e.to_string())))?;
    let title = if kind == DocKind::Html {
        html_title(&fetched.bytes)
    } else {
        None
    };
    Ok(Page {
        url: fetched.url,
        kind,
        title,
        bytes: fetched.bytes,
    })
}

/// The `<title>` of a page, cheaply (no full parse).
fn html_title(bytes: &[u8]) -> Option<String> {
    let text = String::from_utf8_lossy(&bytes[..bytes.len().min(64 * 1024)]);
    let lower = text.to_ascii_lowercase();
    let start = lower.find("<title")?;
    let open_end = start + lower[start..].find('>')? + 1;
    let close = open_end + lower[open_end..].find("</title")?;
    let title: String = text[open_end..close]
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    let title = title
        .replace("&amp;", "&")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#39;", "'");
    (!title.is_empty()).then(|| title.chars().take(200).collect())
}

/// Walks the site breadth-first from the start page, creating a document per page fetched.
async fn crawl(
    state: &AppState,
    tenant: TenantId,
    root: &Document,
    start: Page,
    args: &FetchArgs,
    plan: &Plan,
) -> std::result::Result<(), JobError> {
    let robots = Robots::fetch(&state.fetcher, &start.url).await;
    let mut seen: HashSet<String> = HashSet::new();
    seen.insert(normalize(&start.url));
    if let Some(u) = root.source_url.as_deref().and_then(|u| Url::parse(u).ok()) {
        seen.insert(normalize(&u));
    }
    let mut queue: VecDeque<(Url, u32)> = VecDeque::new();
    enqueue_links(&start, 1, &mut queue, &mut seen);
    let mut pages = 1u32;
    let mut skipped = 0u32;
    while pages < args.max_pages {
        let Some((url, depth)) = queue.pop_front() else {
            break;
        };
        if !robots.allows(&url) {
            skipped += 1;
            continue;
        }
        let page = match fetch_page(state, &url, plan).await {
            Ok(p) => p,
            Err(_) => {
                skipped += 1;
                continue;
            }
        };
        if !seen.insert(normalize(&page.url)) && page.url != url {
            continue; // redirected to a page already taken
        }
        let id = derived_id(root.id, &page.url);
        let key = blob_key(tenant, id);
        let new = NewDocument {
            id,
            title: page.title.clone().unwrap_or_else(|| page.url.to_string()),
            filename: None,
            source: DocumentSource::Url,
            source_url: Some(page.url.to_string()),
            kind: page.kind.as_str().to_owned(),
            size_bytes: page.bytes.len() as u64,
            sha256: hex::encode(Sha256::digest(&page.bytes)),
            blob_key: Some(key.clone()),
            created_at: Utc::now(),
        };
        state
            .blobs
            .put(&key, page.bytes.clone())
            .await
            .map_err(|e| JobError::retry_because("storing a page", e))?;
        match state
            .store
            .create_document(tenant, new, parse_job(id, 1), plan.max_documents)
            .await
        {
            Ok(_) => state.jobs_ready.notify_waiters(),
            Err(StoreError::Conflict(c)) if c == conflict::DOCUMENT_EXISTS => {}
            Err(StoreError::Conflict(c)) if c == conflict::DOCUMENT_LIMIT_REACHED => {
                let _ = state.blobs.delete(&key).await;
                tracing::info!(document.id = %root.id, "crawl stopped at the plan's document limit");
                break;
            }
            Err(StoreError::NotFound) => return Ok(()),
            Err(e) => return Err(e.into()),
        }
        pages += 1;
        if depth < args.max_depth && page.kind == DocKind::Html {
            enqueue_links(&page, depth + 1, &mut queue, &mut seen);
        }
    }
    tracing::info!(document.id = %root.id, pages, skipped, "crawl finished");
    Ok(())
}

/// Same-site links of `page`, fragments dropped, each once.
fn enqueue_links(
    page: &Page,
    depth: u32,
    queue: &mut VecDeque<(Url, u32)>,
    seen: &mut HashSet<String>,
) {
    let html = String::from_utf8_lossy(&page.bytes);
    for href in html_links(&html) {
        let Ok(mut url) = page.url.join(&href) else {
            continue;
        };
        url.set_fragment(None);
        if !matches!(url.scheme(), "http" | "https")
            || url.host_str() != page.url.host_str()
            || url.port_or_known_default() != page.url.port_or_known_default()
            || skip_extension(url.path())
        {
            continue;
        }
        if seen.insert(normalize(&url)) {
            queue.push_back((url, depth));
        }
    }
}

/// Links to media and archives are not worth a fetch.
fn skip_extension(path: &str) -> bool {
    const SKIP: &[&str] = &[
        ".png", ".jpg", ".jpeg", ".gif", ".svg", ".webp", ".ico", ".css", ".js", ".zip", ".gz",
        ".tar", ".mp3", ".mp4", ".avi", ".mov", ".woff", ".woff2", ".ttf", ".exe", ".dmg",
    ];
    let p = path.to_ascii_lowercase();
    SKIP.iter().any(|ext| p.ends_with(ext))
}

fn normalize(url: &Url) -> String {
    let mut u = url.clone();
    u.set_fragment(None);
    let s = u.to_string();
    s.strip_suffix('/').map_or(s.clone(), str::to_owned)
}

/// A page's document id: time-ordered like the start document's (same timestamp prefix) and
/// otherwise a hash of the start document and the URL, so a retried crawl meets it again.
fn derived_id(root: DocumentId, url: &Url) -> DocumentId {
    let digest = Sha256::new()
        .chain_update(root.0.as_bytes())
        .chain_update(normalize(url).as_bytes())
        .finalize();
    let mut bytes = [0u8; 16];
    bytes[..6].copy_from_slice(&root.0.as_bytes()[..6]);
    bytes[6..].copy_from_slice(&digest[..10]);
    bytes[6] = (bytes[6] & 0x0f) | 0x70; // version 7
    bytes[8] = (bytes[8] & 0x3f) | 0x80; // RFC 4122 variant
    DocumentId(uuid::Uuid::from_bytes(bytes))
}

/// The rules of one robots.txt that apply to us.
#[derive(Debug, Default)]
pub struct Robots {
    /// (allow, pattern); the longest matching pattern decides, allow wins ties.
    rules: Vec<(bool, String)>,
}

impl Robots {
    /// Reads `/robots.txt` of `url`'s site. Missing (4xx) means everything is allowed; a site
    /// that fails to answer it (5xx) is left alone entirely, as crawlers conventionally do.
    pub async fn fetch(fetcher: &Fetcher, url: &Url) -> Self {
        let Ok(robots_url) = url.join("/robots.txt") else {
            return Self::default();
        };
        match fetcher.get(&robots_url, MAX_ROBOTS_BYTES).await {
            Ok(f) => Self::parse(&String::from_utf8_lossy(&f.bytes)),
            Err(FetchError::TooLarge(_)) => Self::default(),
            Err(FetchError::Status(s)) if (400..500).contains(&s) => Self::default(),
            Err(FetchError::Status(_))
            | Err(FetchError::Timeout(_))
            | Err(FetchError::Network(_)) => Self {
                rules: vec![(false, "/".into())],
            },
            Err(_) => Self::default(),
        }
    }

    /// The group naming our agent if there is one, else the `*` group.
    pub fn parse(text: &str) -> Self {
        let mut ours: Option<Vec<(bool, String)>> = None;
        let mut star: Option<Vec<(bool, String)>> = None;
        let mut agents: Vec<String> = Vec::new();
        let mut rules: Vec<(bool, String)> = Vec::new();
        let mut in_rules = false;
        let mut flush = |agents: &mut Vec<String>, rules: &mut Vec<(bool, String)>| {
            for a in agents.iter() {
                if a.contains(ROBOTS_AGENT) && ours.is_none() {
                    ours = Some(rules.clone());
                } else if a == "*" && star.is_none() {
                    star = Some(rules.clone());
                }
            }
            agents.clear();
            rules.clear();
        };
        for line in text.lines() {
            let line = line.split('#').next().unwrap_or("").trim();
            let Some((key, value)) = line.split_once(':') else {
                continue;
            };
            let (key, value) = (key.trim().to_ascii_lowercase(), value.trim());
            match key.as_str() {
                "user-agent" => {
                    if in_rules {
                        flush(&mut agents, &mut rules);
                        in_rules = false;
                    }
                    agents.push(value.to_ascii_lowercase());
                }
                "allow" | "disallow" => {
                    in_rules = true;
                    if !value.is_empty() {
                        rules.push((key == "allow", value.to_owned()));
                    }
                }
                _ => {}
            }
        }
        flush(&mut agents, &mut rules);
        Self {
            rules: ours.or(star).unwrap_or_default(),
        }
    }

    pub fn allows(&self, url: &Url) -> bool {
        let path = match url.query() {
            Some(q) => format!("{}?{q}", url.path()),
            None => url.path().to_owned(),
        };
        let mut best: Option<(usize, bool)> = None;
        for (allow, pattern) in &self.rules {
            if matches(pattern, &path) {
                let len = pattern.len();
                if best.is_none_or(|(l, a)| len > l || (len == l && *allow && !a)) {
                    best = Some((len, *allow));
                }
            }
        }
        best.is_none_or(|(_, allow)| allow)
    }
}

/// robots.txt patterns: a path prefix where `*` matches any run and a final `$` anchors.
fn matches(pattern: &str, path: &str) -> bool {
    let (pattern, anchored) = match pattern.strip_suffix('$') {
        Some(p) => (p, true),
        None => (pattern, false),
    };
    let parts: Vec<&str> = pattern.split('*').collect();
    let mut at = 0usize;
    for (i, part) in parts.iter().enumerate() {
        if i == 0 {
            if !path.starts_with(part) {
                return false;
            }
            at = part.len();
        } else if let Some(found) = path[at..].find(part) {
            at += found + part.len();
        } else {
            return false;
        }
    }
    if anchored {
        // The last literal part must end the path.
        return parts.last().is_some_and(|last| path.ends_with(last)) && at <= path.len();
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(path: &str) -> Url {
        Url::parse(&format!("https://docs.example.com{path}")).expect("url")
    }

    #[test]
    fn robots_rules_pick_our_group_and_the_longest_match() {
        let r = Robots::parse(
            "User-agent: *\nDisallow: /\n\nUser-agent: Googlebot\nUser-agent: CortexLayerBot\nDisallow: /private\nAllow: /private/faq\nDisallow: /*.json$\n",
        );
        assert!(r.allows(&url("/guide")));
        assert!(!r.allows(&url("/private/keys")));
        assert!(r.allows(&url("/private/faq/returns")));
        assert!(!r.allows(&url("/data/export.json")));
        assert!(r.allows(&url("/data/export.json.html")));
        let star = Robots::parse("User-agent: *\nDisallow: /admin\nDisallow:\n");
        assert!(star.allows(&url("/")) && !star.allows(&url("/admin/users")));
        assert!(Robots::parse("").allows(&url("/anything")));
        assert!(Robots::parse("garbage\n\u{0}:::\n").allows(&url("/x")));
    }

    #[test]
    fn crawled_page_ids_are_stable_and_time_ordered_with_their_start() {
        let root = DocumentId::new();
        let a = derived_id(root, &url("/a"));
        assert_eq!(a, derived_id(root, &url("/a#section")));
        assert_ne!(a, derived_id(root, &url("/b")));
        assert_eq!(a.0.get_version_num(), 7);
        assert_eq!(&a.0.as_bytes()[..6], &root.0.as_bytes()[..6]);
    }

    #[test]
    fn titles_are_read_without_a_full_parse() {
        assert_eq!(
            html_title(b"<html><head><TITLE> Returns &amp; refunds\n</TITLE></head>"),
            Some("Returns & refunds".into())
        );
        assert_eq!(html_title(b"<html><body>none</body>"), None);
    }
}
