//! Fetching tenant-given URLs without becoming a proxy into the operator's network (SSRF).
//!
//! - http and https only, no credentials in the URL;
//! - the host is resolved here, every address it resolves to must be public (loopback,
//!   private, link-local including the cloud metadata address 169.254.169.254, CGNAT, the
//!   IPv6 unique-local and link-local ranges, IPv4 hidden in IPv6 forms, 0.0.0.0 and other
//!   special ranges are refused), and the connection goes to exactly the checked addresses,
//!   so a DNS answer that changes between check and connect cannot redirect it;
//! - redirects are followed by hand, each hop checked the same way (5 at most);
//! - the body is read up to a byte cap and the whole fetch is bounded in time.
//!
//! Operators who want an internal site crawled list its `host:port` in
//! `CORTEX_FETCH_ALLOW_HOSTS`; nothing else reaches a private address. Proxies in the
//! environment (`HTTP_PROXY`, `HTTPS_PROXY`, `ALL_PROXY`) are ignored: they would connect by
//! name. An operator whose network needs an egress proxy names it in `CORTEX_FETCH_PROXY`,
//! and that proxy must enforce the same address policy.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use reqwest::StatusCode;
use url::Url;

const MAX_REDIRECTS: usize = 5;

#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error("the URL is not valid: {0}")]
    InvalidUrl(String),
    #[error("the address is not allowed: {0}")]
    Blocked(String),
    #[error("the page is larger than {0} bytes")]
    TooLarge(u64),
    #[error("the server answered HTTP {0}")]
    Status(u16),
    #[error("more than {MAX_REDIRECTS} redirects")]
    TooManyRedirects,
    #[error("the server did not answer within {0} s")]
    Timeout(u64),
    #[error("the page could not be fetched: {0}")]
    Network(String),
}

impl FetchError {
    /// Worth trying again later (the site may come back); the others will fail again.
    pub fn is_transient(&self) -> bool {
        match self {
            Self::Timeout(_) | Self::Network(_) => true,
            Self::Status(s) => *s == 429 || *s >= 500,
            _ => false,
        }
    }

    /// Stable code for a failed document.
    pub fn code(&self) -> &'static str {
        match self {
            Self::InvalidUrl(_) => "invalid_url",
            Self::Blocked(_) => "url_blocked",
            Self::TooLarge(_) => "file_too_large",
            _ => "fetch_failed",
        }
    }
}

/// What a fetch brought back.
#[derive(Debug)]
pub struct Fetched {
    /// Where the content came from after redirects.
    pub url: Url,
    pub content_type: Option<String>,
    pub bytes: Vec<u8>,
}

#[derive(Clone)]
pub struct Fetcher {
    allowed_hosts: Vec<String>,
    timeout: Duration,
    user_agent: String,
    /// The operator's explicit egress proxy (`CORTEX_FETCH_PROXY`); never the environment's.
    proxy: Option<reqwest::Proxy>,
}

impl Fetcher {
    pub fn new(allowed_hosts: Vec<String>, timeout: Duration, user_agent: String) -> Self {
        Self {
            allowed_hosts: allowed_hosts
                .into_iter()
                .map(|h| h.to_ascii_lowercase())
                .collect(),
            timeout,
            user_agent,
            proxy: None,
        }
    }

    /// Sends every fetch through the operator's egress proxy. The addresses are still checked
    /// here first, but the proxy resolves the name again and connects itself, so it must
    /// enforce the same policy (no private, loopback, link-local or metadata addresses).
    pub fn with_proxy(mut self, proxy_url: &str) -> Result<Self, FetchError> {
        let proxy = reqwest::Proxy::all(proxy_url)
            .map_err(|_| FetchError::InvalidUrl("the fetch proxy URL is not valid".into()))?;
        self.proxy = Some(proxy);
        Ok(self)
    }

    /// Checks the URL's form (scheme, host, no credentials) without touching the network.
    pub fn check_url(raw: &str) -> Result<Url, FetchError> {
        let url = Url::parse(raw.trim()).map_err(|e| FetchError::InvalidUrl(e.to_string()))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(FetchError::InvalidUrl("only http and https URLs".into()));
        }
        if url.host().is_none() {
            return Err(FetchError::InvalidUrl("the URL has no host".into()));
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(FetchError::InvalidUrl(
                "URLs with credentials are not fetched".into(),
            ));
        }
        Ok(url)
    }

    /// GETs `url`, reading at most `max_bytes` of body.
    pub async fn get(&self, url: &Url, max_bytes: u64) -> Result<Fetched, FetchError> {
        let secs = self.timeout.as_secs();
        tokio::time::timeout(self.timeout, self.get_inner(url.clone(), max_bytes))
            .await
            .map_err(|_| FetchError::Timeout(secs))?
    }

    async fn get_inner(&self, mut url: Url, max_bytes: u64) -> Result<Fetched, FetchError> {
        for _ in 0..=MAX_REDIRECTS {
            let url_checked = Self::check_url(url.as_str())?;
            let addrs = self.resolve(&url_checked).await?;
            let host = url_checked.host_str().unwrap_or_default().to_owned();
            // `no_proxy`: a proxy taken from `HTTP(S)_PROXY` would connect by host name and undo
            // the pinning to the checked addresses.
            let mut builder = reqwest::Client::builder()
                .no_proxy()
                .redirect(reqwest::redirect::Policy::none())
                .resolve_to_addrs(&host, &addrs)
                .user_agent(&self.user_agent)
                .timeout(self.timeout);
            if let Some(proxy) = &self.proxy {
                builder = builder.proxy(proxy.clone());
            }
            let client = builder
                .build()
                .map_err(|e| FetchError::Network(e.to_string()))?;
            let mut response = client
                .get(url_checked.clone())
                .send()
                .await
                .map_err(|e| FetchError::Network(without_url(&e)))?;
            let status = response.status();
            if status.is_redirection() && status != StatusCode::NOT_MODIFIED {
                let location = response
                    .headers()
                    .get(reqwest::header::LOCATION)
                    .and_then(|v| v.to_str().ok())
                    .ok_or(FetchError::Status(status.as_u16()))?;
                url = url_checked
                    .join(location)
                    .map_err(|e| FetchError::InvalidUrl(e.to_string()))?;
                continue;
            }
            if !status.is_success() {
                return Err(FetchError::Status(status.as_u16()));
            }
            if response.content_length().is_some_and(|n| n > max_bytes) {
                return Err(FetchError::TooLarge(max_bytes));
            }
            let content_type = response
                .headers()
                .get(reqwest::header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned);
            let mut bytes = Vec::new();
            while let Some(chunk) = response
                .chunk()
                .await
                .map_err(|e| FetchError::Network(without_url(&e)))?
            {
                if bytes.len() as u64 + chunk.len() as u64 > max_bytes {
                    return Err(FetchError::TooLarge(max_bytes));
                }
                bytes.extend_from_slice(&chunk);
            }
            return Ok(Fetched {
                url: url_checked,
                content_type,
                bytes,
            });
        }
        Err(FetchError::TooManyRedirects)
    }

    /// The addresses to connect to: all public, unless the operator allowed this host.
    async fn resolve(&self, url: &Url) -> Result<Vec<SocketAddr>, FetchError> {
        let host = url.host_str().unwrap_or_default();
        let port = url.port_or_known_default().unwrap_or(80);
        let bare = host.trim_start_matches('[').trim_end_matches(']');
        let addrs: Vec<SocketAddr> = match bare.parse::<IpAddr>() {
            Ok(ip) => vec![SocketAddr::new(ip, port)],
            Err(_) => tokio::net::lookup_host((bare, port))
                .await
                .map_err(|e| {
                    FetchError::Network(format!("the host name cannot be resolved ({})", e.kind()))
                })?
                .collect(),
        };
        if addrs.is_empty() {
            return Err(FetchError::Network("the host name has no address".into()));
        }
        let allowed = self
            .allowed_hosts
            .contains(&format!("{}:{port}", host.to_ascii_lowercase()));
        if !allowed && let Some(bad) = addrs.iter().find(|a| !is_public(a.ip())) {
            return Err(FetchError::Blocked(format!(
                "{host} resolves to {}, which is not a public address",
                bad.ip()
            )));
        }
        Ok(addrs)
    }
}

/// reqwest's errors name the URL; keep only the cause.
fn without_url(e: &reqwest::Error) -> String {
    let mut msg = e.to_string();
    if let Some(url) = e.url() {
        msg = msg.replace(url.as_str(), "the URL");
    }
    if e.is_timeout() {
        "timed out".into()
    } else if e.is_connect() {
        "could not connect".into()
    } else {
        msg
    }
}

/// Whether `ip` is an ordinary public unicast address.
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_public_v4(v4),
        IpAddr::V6(v6) => is_public_v6(v6),
    }
}

fn is_public_v4(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    !(ip.is_unspecified()
        || ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local()
        || ip.is_broadcast()
        || ip.is_multicast()
        || ip.is_documentation()
        || a == 0
        || (a == 100 && (64..128).contains(&b)) // CGNAT 100.64/10
        || (a == 192 && b == 0 && c == 0) // IETF protocol assignments
        || (a == 198 && (b == 18 || b == 19)) // benchmarking
        || a >= 240) // reserved
}

fn is_public_v6(ip: Ipv6Addr) -> bool {
    let s = ip.segments();
    let last_v4 = || Ipv4Addr::new((s[6] >> 8) as u8, s[6] as u8, (s[7] >> 8) as u8, s[7] as u8);
    if let Some(v4) = ip.to_ipv4_mapped() {
        return is_public_v4(v4);
    }
    // Forms that embed an IPv4 address that routing or a translator may reach: judge that
    // address. IPv4-compatible (::a.b.c.d), IPv4-translated (::ffff:0:a.b.c.d, SIIT) and the
    // well-known NAT64 prefix (64:ff9b::/96) carry it in the last 32 bits.
    if s[..6] == [0, 0, 0, 0, 0, 0] && !ip.is_loopback() && !ip.is_unspecified() {
        return is_public_v4(last_v4());
    }
    if s[..6] == [0, 0, 0, 0, 0xffff, 0] {
        return is_public_v4(last_v4());
    }
    if s[0] == 0x64 && s[1] == 0xff9b && s[2..6] == [0, 0, 0, 0] {
        return is_public_v4(last_v4());
    }
    // Local-use NAT64 (64:ff9b:1::/48, RFC 8215): the operator picks the prefix length, so
    // the address may sit at any RFC 6052 position from /48 on; every reading must be public.
    if s[0] == 0x64 && s[1] == 0xff9b && s[2] == 1 {
        return rfc6052_readings(ip).into_iter().all(is_public_v4);
    }
    // 6to4 (2002::/16) carries it in bits 16–47.
    if s[0] == 0x2002 {
        return is_public_v4(Ipv4Addr::new(
            (s[1] >> 8) as u8,
            s[1] as u8,
            (s[2] >> 8) as u8,
            s[2] as u8,
        ));
    }
    // Teredo (2001::/32) tunnels to an obfuscated IPv4 address through a relay of its own
    // choosing: nothing about it is worth fetching, so it is refused.
    if s[0] == 0x2001 && s[1] == 0 {
        return false;
    }
    !(ip.is_unspecified()
        || ip.is_loopback()
        || ip.is_multicast()
        || (s[0] & 0xfe00) == 0xfc00 // unique local fc00::/7
        || (s[0] & 0xffc0) == 0xfe80 // link-local fe80::/10
        || (s[0] & 0xffc0) == 0xfec0 // site-local (deprecated) fec0::/10
        || (s[0] == 0x2001 && s[1] == 0x0db8)) // documentation
}

/// The IPv4 address an RFC 6052 translator would read from `ip` under each prefix length
/// of /48 and longer (bits 64–71 are the reserved "u" octet and are skipped).
fn rfc6052_readings(ip: Ipv6Addr) -> [Ipv4Addr; 4] {
    let o = ip.octets();
    [
        Ipv4Addr::new(o[6], o[7], o[9], o[10]),    // /48
        Ipv4Addr::new(o[7], o[9], o[10], o[11]),   // /56
        Ipv4Addr::new(o[9], o[10], o[11], o[12]),  // /64
        Ipv4Addr::new(o[12], o[13], o[14], o[15]), // /96
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn private_and_special_addresses_are_not_public() {
        for bad in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "0.1.2.3",
            "255.255.255.255",
            "224.0.0.1",
            "240.0.0.1",
            "::1",
            "::",
            "fc00::1",
            "fd12:3456::1",
            "fe80::1",
            "::ffff:127.0.0.1",
            "::ffff:169.254.169.254",
            "::127.0.0.1",
            "64:ff9b::a9fe:a9fe",
            "2002:7f00:1::",
            // IPv4-translated ::ffff:0:a.b.c.d: loopback, private, metadata
            "::ffff:0:127.0.0.1",
            "::ffff:0:10.0.0.1",
            "::ffff:0:169.254.169.254",
            // local-use NAT64 64:ff9b:1::/48 at /96, and at /48 (bits 48–63, 72–87)
            "64:ff9b:1::7f00:1",
            "64:ff9b:1::c0a8:101",
            "64:ff9b:1::a9fe:a9fe",
            "64:ff9b:1:a9fe:a9:fe00::",
            "64:ff9b:1:7f00:1::",
            // Teredo 2001::/32, whatever it carries
            "2001:0:4136:e378:8000:63bf:3fff:fdd2",
            "2001:0:5ef5:79fd:0:59d:a0e5:ba1",
            "2001:db8::1",
            "ff02::1",
        ] {
            assert!(!is_public(bad.parse().expect(bad)), "{bad} must be refused");
        }
        for good in [
            "93.184.216.34",
            "8.8.8.8",
            "2606:4700::1111",
            "::ffff:8.8.8.8",
            "::ffff:0:8.8.8.8",
            "64:ff9b::808:808",
            "64:ff9b:1:808:8:808:808:808",
            "2001:4860:4860::8888",
        ] {
            assert!(is_public(good.parse().expect(good)), "{good} is public");
        }
    }

    #[test]
    fn only_plain_http_urls_pass_the_form_check() {
        assert!(Fetcher::check_url("https://docs.example.com/a?b#c").is_ok());
        for bad in [
            "ftp://example.com/",
            "file:///etc/passwd",
            "gopher://example.com",
            "https://user:pw@example.com/",
            "not a url",
            "http://",
            "javascript:alert(1)",
        ] {
            assert!(Fetcher::check_url(bad).is_err(), "{bad}");
        }
    }

    #[tokio::test]
    async fn literal_private_addresses_are_blocked_before_connecting() {
        let f = Fetcher::new(vec![], Duration::from_secs(2), "test".into());
        for url in [
            "http://127.0.0.1:9/",
            "http://169.254.169.254/latest/meta-data/",
            "http://[::1]:9/",
            "http://[::ffff:10.0.0.1]/",
            "http://0.0.0.0/",
            "http://localhost:9/",
        ] {
            let err = f
                .get(&Url::parse(url).expect("url"), 1000)
                .await
                .expect_err(url);
            assert!(matches!(err, FetchError::Blocked(_)), "{url}: {err:?}");
        }
    }
}
