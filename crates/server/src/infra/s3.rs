//! S3-compatible object storage behind the [`BlobStore`] port (AWS S3, MinIO, Cloudflare R2,
//! Backblaze B2, Ceph…): path-style `PUT`, `GET` and `DELETE` of `/{bucket}/{key}`, each
//! signed with AWS Signature Version 4 (written here with `hmac`/`sha2` rather than pulling
//! an SDK).

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use cortex_core::ports::{BlobError, BlobStore, valid_blob_key};
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

#[derive(Clone, Debug)]
pub struct S3Config {
    /// `https://s3.eu-west-1.amazonaws.com`, `http://minio:9000`, …
    pub endpoint: String,
    pub bucket: String,
    pub region: String,
    pub access_key_id: String,
    pub secret_access_key: String,
    /// Keys are stored under this prefix (e.g. `cortexlayer/`).
    pub prefix: String,
}

pub struct S3BlobStore {
    config: S3Config,
    client: reqwest::Client,
}

impl S3BlobStore {
    pub fn new(config: S3Config) -> anyhow::Result<Self> {
        url::Url::parse(&config.endpoint)?;
        Ok(Self {
            config,
            client: reqwest::Client::builder()
                .timeout(Duration::from_secs(60))
                .build()?,
        })
    }

    fn object_path(&self, key: &str) -> Result<String, BlobError> {
        if !valid_blob_key(key) {
            return Err(BlobError::InvalidKey(key.to_owned()));
        }
        Ok(format!(
            "/{}/{}{}",
            uri_encode(&self.config.bucket),
            uri_encode_path(&self.config.prefix),
            uri_encode_path(key)
        ))
    }

    async fn send(
        &self,
        method: reqwest::Method,
        key: &str,
        body: Vec<u8>,
    ) -> Result<reqwest::Response, BlobError> {
        let path = self.object_path(key)?;
        let url = format!("{}{path}", self.config.endpoint.trim_end_matches('/'));
        let host = url::Url::parse(&url)
            .ok()
            .and_then(|u| {
                u.host_str().map(|h| match u.port() {
                    Some(p) => format!("{h}:{p}"),
                    None => h.to_owned(),
                })
            })
            .ok_or_else(|| BlobError::Io("the S3 endpoint has no host".into()))?;
        let payload_hash = hex::encode(Sha256::digest(&body));
        let now = Utc::now();
        let amz_date = now.format("%Y%m%dT%H%M%SZ").to_string();
        let headers = [
            ("host", host.as_str()),
            ("x-amz-content-sha256", payload_hash.as_str()),
            ("x-amz-date", amz_date.as_str()),
        ];
        let authorization = sign(
            &self.config,
            method.as_str(),
            &path,
            "",
            &headers,
            &payload_hash,
            now,
        );
        self.client
            .request(method, &url)
            .header("x-amz-content-sha256", &payload_hash)
            .header("x-amz-date", &amz_date)
            .header("authorization", authorization)
            .body(body)
            .send()
            .await
            .map_err(|e| BlobError::Io(format!("object storage unreachable: {}", e.without_url())))
    }
}

type HmacSha256 = Hmac<Sha256>;

fn hmac(key: &[u8], data: &str) -> Vec<u8> {
    let mut mac = HmacSha256::new_from_slice(key).expect("HMAC takes keys of any length");
    mac.update(data.as_bytes());
    mac.finalize().into_bytes().to_vec()
}

/// The `Authorization` header of AWS Signature Version 4 for service `s3`. `headers` are the
/// signed headers (names lowercase), `canonical_query` already encoded and sorted.
pub fn sign(
    config: &S3Config,
    method: &str,
    canonical_uri: &str,
    canonical_query: &str,
    headers: &[(&str, &str)],
    payload_hash: &str,
    at: DateTime<Utc>,
) -> String {
    let mut headers: Vec<(String, String)> = headers
        .iter()
        .map(|(k, v)| (k.to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    headers.sort();
    let canonical_headers: String = headers.iter().map(|(k, v)| format!("{k}:{v}\n")).collect();
    let signed_headers = headers
        .iter()
        .map(|(k, _)| k.as_str())
        .collect::<Vec<_>>()
        .join(";");
    let canonical_request = format!(
        "{method}\n{canonical_uri}\n{canonical_query}\n{canonical_headers}\n{signed_headers}\n{payload_hash}"
    );
    let date = at.format("%Y%m%d").to_string();
    let amz_date = at.format("%Y%m%dT%H%M%SZ").to_string();
    let scope = format!("{date}/{}/s3/aws4_request", config.region);
    let string_to_sign = format!(
        "AWS4-HMAC-SHA256\n{amz_date}\n{scope}\n{}",
        hex::encode(Sha256::digest(canonical_request.as_bytes()))
    );
    let k_date = hmac(
        format!("AWS4{}", config.secret_access_key).as_bytes(),
        &date,
    );
    let k_region = hmac(&k_date, &config.region);
    let k_service = hmac(&k_region, "s3");
    let k_signing = hmac(&k_service, "aws4_request");
    let signature = hex::encode(hmac(&k_signing, &string_to_sign));
    format!(
        "AWS4-HMAC-SHA256 Credential={}/{scope}, SignedHeaders={signed_headers}, Signature={signature}",
        config.access_key_id
    )
}

/// RFC 3986 encoding as SigV4 wants it: unreserved characters stay, everything else is `%XX`.
fn uri_encode(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// Like [`uri_encode`], keeping `/` between segments.
fn uri_encode_path(s: &str) -> String {
    s.split('/').map(uri_encode).collect::<Vec<_>>().join("/")
}

#[async_trait]
impl BlobStore for S3BlobStore {
    fn backend(&self) -> &'static str {
        "s3"
    }

    async fn put(&self, key: &str, bytes: Vec<u8>) -> Result<(), BlobError> {
        let r = self.send(reqwest::Method::PUT, key, bytes).await?;
        if !r.status().is_success() {
            return Err(BlobError::Io(format!(
                "object storage refused the upload: HTTP {}",
                r.status().as_u16()
            )));
        }
        Ok(())
    }

    async fn get(&self, key: &str) -> Result<Vec<u8>, BlobError> {
        let r = self.send(reqwest::Method::GET, key, Vec::new()).await?;
        match r.status().as_u16() {
            200 => Ok(r
                .bytes()
                .await
                .map_err(|e| BlobError::Io(e.without_url().to_string()))?
                .to_vec()),
            404 => Err(BlobError::NotFound),
            s => Err(BlobError::Io(format!("object storage answered HTTP {s}"))),
        }
    }

    async fn delete(&self, key: &str) -> Result<(), BlobError> {
        let r = self.send(reqwest::Method::DELETE, key, Vec::new()).await?;
        match r.status().as_u16() {
            200 | 204 | 404 => Ok(()),
            s => Err(BlobError::Io(format!("object storage answered HTTP {s}"))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    /// The "GET Object" example of the AWS Signature Version 4 documentation for S3.
    #[test]
    fn the_signature_matches_aws_documented_example() {
        let config = S3Config {
            endpoint: "https://examplebucket.s3.amazonaws.com".into(),
            bucket: "examplebucket".into(),
            region: "us-east-1".into(),
            access_key_id: "AKIAIOSFODNN7EXAMPLE".into(),
            secret_access_key: "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY".into(),
            prefix: String::new(),
        };
        let empty = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
        let at = Utc
            .with_ymd_and_hms(2013, 5, 24, 0, 0, 0)
            .single()
            .expect("date");
        let auth = sign(
            &config,
            "GET",
            "/test.txt",
            "",
            &[
                ("host", "examplebucket.s3.amazonaws.com"),
                ("range", "bytes=0-9"),
                ("x-amz-content-sha256", empty),
                ("x-amz-date", "20130524T000000Z"),
            ],
            empty,
            at,
        );
        assert_eq!(
            auth,
            "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request, SignedHeaders=host;range;x-amz-content-sha256;x-amz-date, Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41"
        );
    }

    #[test]
    fn keys_are_encoded_per_segment() {
        assert_eq!(uri_encode_path("documents/a b/é"), "documents/a%20b/%C3%A9");
    }
}
