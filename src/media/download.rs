//! Fetching a message's media. Cloud API: two steps, `GET /{version}/{media-id}` (Bearer)
//! for a short-lived URL, then `GET url` (same Bearer) for the bytes; the URL expires after
//! about five minutes, so every attempt asks for a fresh one. wabot.my: the message carries
//! a URL, fetched as it is. Bodies are read with a size cap, so an oversized file is
//! refused while it streams, not after.

use std::time::Duration;

use serde::Deserialize;

use crate::config::Secret;

use super::guard::{self, HostAllowlist};
use super::MediaError;
use crate::topics::inbound::is_cloud_api_media_id;

pub struct MediaClient {
    http: reqwest::Client,
    max_bytes: u64,
    allow_private: bool,
}

#[derive(Deserialize)]
struct MediaInfo {
    url: String,
}

impl MediaClient {
    /// `allow_private`: private and loopback addresses may be fetched from (tests, or a
    /// gateway on the local network); never in a public deployment.
    pub fn new(max_bytes: u64, timeout: Duration, allow_private: bool) -> Result<Self, MediaError> {
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(Duration::from_secs(3))
            .dns_resolver(guard::resolver(allow_private))
            .redirect(guard::same_host_redirects())
            // A proxy would resolve the name itself, past the resolver's check.
            .no_proxy()
            .build()
            .map_err(|e| MediaError::Download(format!("HTTP client: {e}")))?;
        Ok(MediaClient {
            http,
            max_bytes,
            allow_private,
        })
    }

    /// The bytes of a Cloud API media id (digits only); the URL the media endpoint
    /// answers with must be on `hosts`.
    pub async fn cloud_api(
        &self,
        base_url: &str,
        version: &str,
        token: &Secret,
        media_id: &str,
        hosts: &HostAllowlist,
    ) -> Result<Vec<u8>, MediaError> {
        if !is_cloud_api_media_id(media_id) {
            return Err(MediaError::Forbidden {
                reason: "a Cloud API media id is digits".into(),
            });
        }
        let info_url = format!("{}/{version}/{media_id}", base_url.trim_end_matches('/'));
        let response = self
            .http
            .get(&info_url)
            .bearer_auth(token.expose())
            .send()
            .await
            .map_err(|e| transport(e, token))?;
        if !response.status().is_success() {
            return Err(MediaError::Refused {
                status: response.status().as_u16(),
                what: "media info".into(),
            });
        }
        let info: MediaInfo = response
            .json()
            .await
            .map_err(|e| MediaError::Download(format!("media info is not JSON with a url: {e}")))?;
        self.fetch(&info.url, Some(token), hosts).await
    }

    /// The bytes at `url`, which must be on `hosts` and public, with the bearer token when
    /// given.
    pub async fn fetch(
        &self,
        url: &str,
        token: Option<&Secret>,
        hosts: &HostAllowlist,
    ) -> Result<Vec<u8>, MediaError> {
        let url = guard::check_url(url, hosts, self.allow_private)?;
        let mut request = self.http.get(url);
        if let Some(token) = token {
            request = request.bearer_auth(token.expose());
        }
        let mut response = request.send().await.map_err(|e| transport_opt(e, token))?;
        if !response.status().is_success() {
            return Err(MediaError::Refused {
                status: response.status().as_u16(),
                what: "media bytes".into(),
            });
        }
        if let Some(length) = response.content_length() {
            if length > self.max_bytes {
                return Err(MediaError::TooLarge {
                    bytes: length,
                    max_bytes: self.max_bytes,
                });
            }
        }
        let mut bytes = Vec::new();
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|e| transport_opt(e, token))?
        {
            if (bytes.len() + chunk.len()) as u64 > self.max_bytes {
                return Err(MediaError::TooLarge {
                    bytes: (bytes.len() + chunk.len()) as u64,
                    max_bytes: self.max_bytes,
                });
            }
            bytes.extend_from_slice(&chunk);
        }
        Ok(bytes)
    }
}

fn transport(e: reqwest::Error, token: &Secret) -> MediaError {
    transport_opt(e, Some(token))
}

/// A transport error as text, without the URL's query or the token; a refused address or
/// redirect is not transient.
fn transport_opt(e: reqwest::Error, token: Option<&Secret>) -> MediaError {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(&e);
    while let Some(error) = source {
        if let Some(not_public) = error.downcast_ref::<guard::NotPublic>() {
            return MediaError::Forbidden {
                reason: not_public.to_string(),
            };
        }
        source = error.source();
    }
    if e.is_redirect() {
        return MediaError::Forbidden {
            reason: "the media host redirected elsewhere".into(),
        };
    }
    let kind = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "cannot connect"
    } else {
        "transfer failed"
    };
    let mut text = format!("{kind}: {}", e.without_url());
    if let Some(token) = token {
        if !token.expose().is_empty() {
            text = text.replace(token.expose(), "<token>");
        }
    }
    MediaError::Download(text)
}
