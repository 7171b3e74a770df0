//! A local stand-in for the WhatsApp Cloud API on `127.0.0.1:<free port>`, for integration
//! tests and the load test: it checks the Bearer token and the request shape, enforces the
//! per-number throughput (130429) and, optionally, the pair rate (131056), records what was
//! sent, can be scripted to fail, and serves media the way the Cloud API does.

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use super::rate_limit::TokenBucket;
use super::MAX_TEXT_CHARS;

/// Graph's "invalid OAuth access token".
const CODE_BAD_TOKEN: i64 = 190;
/// Graph's "invalid parameter".
const CODE_INVALID_PARAMETER: i64 = 100;
/// Graph's "unknown path components" (e.g. an unsupported version).
const CODE_UNKNOWN_PATH: i64 = 2500;
const CODE_THROUGHPUT: i64 = 130429;
const CODE_PAIR_RATE: i64 = 131056;

#[derive(Clone, Debug)]
pub struct FakeConfig {
    pub access_token: String,
    /// Requests under another version are refused like an unknown path.
    pub api_version: String,
    /// Per business number, with one second's worth as burst; `None` for no limit.
    pub messages_per_second: Option<u32>,
    /// Messages to the same user from the same number; `None` for no limit.
    pub pair_rate: Option<PairRate>,
}

impl Default for FakeConfig {
    fn default() -> Self {
        FakeConfig {
            access_token: "fake-cloud-api-token".into(),
            api_version: "v21.0".into(),
            messages_per_second: Some(80),
            pair_rate: None,
        }
    }
}

#[derive(Clone, Copy, Debug)]
pub struct PairRate {
    /// e.g. `1.0 / 6.0` for one message per 6 s.
    pub per_second: f64,
    pub burst: u32,
}

/// What the next send requests get instead of the normal handling.
#[derive(Clone, Debug, PartialEq)]
pub enum FakeFailure {
    /// A Graph error body with this code, e.g. `{400, 131026}` or `{400, 130429}`.
    Code { http_status: u16, code: i64 },
    /// This 5xx status with a plain-text body, like a failing load balancer.
    ServerError(u16),
    /// Handle the request normally but hold the answer back this long: the message is
    /// accepted and recorded even when the client gives up waiting, as a real send can be.
    Delay(Duration),
}

/// One accepted send.
#[derive(Clone, Debug, PartialEq)]
pub struct FakeSent {
    pub phone_number_id: String,
    pub to: String,
    /// `text`, `image`, `video`, `template`, …
    pub kind: String,
    /// The whole JSON request body.
    pub body: Value,
    pub wamid: String,
    pub time: DateTime<Utc>,
}

#[derive(Clone)]
struct Media {
    bytes: Bytes,
    mime: String,
    sha256: String,
}

#[derive(Default)]
struct Inner {
    sent: Vec<FakeSent>,
    failures: VecDeque<FakeFailure>,
    /// Failures for every send to one recipient (by `to` digits), as the Cloud API
    /// answers for an undeliverable number or a user who stopped marketing.
    recipient_failures: HashMap<String, FakeFailure>,
    throughput: HashMap<String, TokenBucket>,
    pairs: HashMap<(String, String), TokenBucket>,
    media: HashMap<String, Media>,
    /// How long each media download is held back (a slow CDN).
    media_delay: Duration,
}

struct Shared {
    config: FakeConfig,
    base_url: String,
    inner: Mutex<Inner>,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn authorized(&self, headers: &HeaderMap) -> bool {
        let expected = format!("Bearer {}", self.config.access_token);
        headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            == Some(expected.as_str())
    }
}

pub struct FakeCloudApi {
    addr: SocketAddr,
    shared: Arc<Shared>,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<std::io::Result<()>>>,
}

impl FakeCloudApi {
    /// Starts on `127.0.0.1:0`. Panics when no loopback port can be bound (a test harness).
    pub async fn start(config: FakeConfig) -> FakeCloudApi {
        Self::try_start(config)
            .await
            .expect("fake Cloud API: cannot listen on 127.0.0.1")
    }

    pub async fn try_start(config: FakeConfig) -> std::io::Result<FakeCloudApi> {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0)).await?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared {
            config,
            base_url: format!("http://{addr}"),
            inner: Mutex::new(Inner::default()),
        });
        let app = Router::new()
            .route("/{version}/{phone_number_id}/messages", post(send_message))
            .route("/{version}/{media_id}", get(media_info))
            .route("/whatsapp_business/attachments", get(media_download))
            .with_state(shared.clone());
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            axum::serve(listener, app)
                .with_graceful_shutdown(async {
                    let _ = stopped.await;
                })
                .await
        });
        Ok(FakeCloudApi {
            addr,
            shared,
            stop: Some(stop),
            task: Some(task),
        })
    }

    /// `http://127.0.0.1:<port>`, to use as the Cloud API base URL.
    pub fn base_url(&self) -> String {
        self.shared.base_url.clone()
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn access_token(&self) -> &str {
        &self.shared.config.access_token
    }

    pub fn api_version(&self) -> &str {
        &self.shared.config.api_version
    }

    /// Every accepted send, oldest first.
    pub fn sent(&self) -> Vec<FakeSent> {
        self.shared.lock().sent.clone()
    }

    /// The accepted sends after the first `from`, oldest first (a poller's increment).
    pub fn sent_since(&self, from: usize) -> Vec<FakeSent> {
        let inner = self.shared.lock();
        inner
            .sent
            .get(from..)
            .map(<[FakeSent]>::to_vec)
            .unwrap_or_default()
    }

    /// The next `n` send requests (after the token check) get `failure`, after any already
    /// scripted.
    pub fn fail_next(&self, n: usize, failure: FakeFailure) {
        let mut inner = self.shared.lock();
        inner.failures.extend(std::iter::repeat_n(failure, n));
    }

    /// Makes `GET /{version}/{id}` and its download URL serve these bytes.
    /// Sends to every recipient succeed again (as far as scripting goes).
    pub fn clear_recipient_failures(&self) {
        self.shared.lock().recipient_failures.clear();
    }

    /// Every later send to `to` (E.164 digits) fails this way.
    pub fn fail_recipient(&self, to: &str, failure: FakeFailure) {
        self.shared
            .lock()
            .recipient_failures
            .insert(to.to_string(), failure);
    }

    pub fn add_media(&self, id: &str, bytes: impl Into<Vec<u8>>, mime: &str) {
        let bytes: Vec<u8> = bytes.into();
        let media = Media {
            sha256: hex::encode(Sha256::digest(&bytes)),
            bytes: Bytes::from(bytes),
            mime: mime.to_string(),
        };
        self.shared.lock().media.insert(id.to_string(), media);
    }

    /// Holds every media download back this long (a slow CDN), from now on.
    pub fn set_media_delay(&self, delay: Duration) {
        self.shared.lock().media_delay = delay;
    }

    /// Stops accepting, lets requests in flight finish (a few seconds at most), and returns.
    pub async fn shutdown(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(mut task) = self.task.take() {
            if tokio::time::timeout(Duration::from_secs(5), &mut task)
                .await
                .is_err()
            {
                task.abort();
            }
        }
    }
}

impl Drop for FakeCloudApi {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

fn graph_error(status: StatusCode, code: i64, message: &str, details: &str) -> Response {
    let body = json!({
        "error": {
            "message": format!("(#{code}) {message}"),
            "type": "OAuthException",
            "code": code,
            "error_data": {"messaging_product": "whatsapp", "details": details},
            "fbtrace_id": format!("Fake{}", uuid::Uuid::new_v4().simple()),
        }
    });
    (status, Json(body)).into_response()
}

fn unauthorized() -> Response {
    graph_error(
        StatusCode::UNAUTHORIZED,
        CODE_BAD_TOKEN,
        "Invalid OAuth access token - Cannot parse access token",
        "The access token is missing or does not match.",
    )
}

fn invalid_parameter(details: &str) -> Response {
    graph_error(
        StatusCode::BAD_REQUEST,
        CODE_INVALID_PARAMETER,
        "Invalid parameter",
        details,
    )
}

fn unknown_version(version: &str) -> Response {
    graph_error(
        StatusCode::BAD_REQUEST,
        CODE_UNKNOWN_PATH,
        "Unknown path components",
        &format!("version {version} is not served here"),
    )
}

fn scripted_message(code: i64) -> &'static str {
    match code {
        CODE_THROUGHPUT => "Rate limit hit",
        CODE_PAIR_RATE => "(Business Account, Consumer Account) pair rate limit hit",
        131026 => "Message undeliverable",
        131047 => "Re-engagement message",
        131048 => "Spam rate limit hit",
        131049 => "This message was not delivered to maintain healthy ecosystem engagement",
        131050 => "User has stopped marketing messages",
        132001 => "Template name does not exist in the translation",
        _ => "Scripted failure",
    }
}

async fn send_message(
    State(shared): State<Arc<Shared>>,
    Path((version, phone_number_id)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if !shared.authorized(&headers) {
        return unauthorized();
    }
    if version != shared.config.api_version {
        return unknown_version(&version);
    }
    let failure = {
        let mut inner = shared.lock();
        match inner.failures.pop_front() {
            Some(failure) => Some(failure),
            None => serde_json::from_slice::<Value>(&body)
                .ok()
                .and_then(|b| b.get("to").and_then(Value::as_str).map(str::to_string))
                .and_then(|to| inner.recipient_failures.get(&to).cloned()),
        }
    };
    match failure {
        Some(FakeFailure::Code { http_status, code }) => {
            let status = StatusCode::from_u16(http_status).unwrap_or(StatusCode::BAD_REQUEST);
            return graph_error(
                status,
                code,
                scripted_message(code),
                "Scripted by the test.",
            );
        }
        Some(FakeFailure::ServerError(status)) => {
            let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            return (status, format!("{} fake server error", status.as_u16())).into_response();
        }
        Some(FakeFailure::Delay(delay)) => {
            let response = handle_send(&shared, phone_number_id, &body);
            tokio::time::sleep(delay).await;
            return response;
        }
        None => {}
    }
    handle_send(&shared, phone_number_id, &body)
}

fn handle_send(shared: &Shared, phone_number_id: String, body: &[u8]) -> Response {
    let request: Value = match serde_json::from_slice(body) {
        Ok(value) => value,
        Err(e) => return invalid_parameter(&format!("body is not JSON: {e}")),
    };
    let (to, kind) = match check_request(&request) {
        Ok(found) => found,
        Err(details) => return invalid_parameter(&details),
    };
    let now = Instant::now();
    let mut inner = shared.lock();
    if let Some(rate) = shared.config.messages_per_second {
        let rate = rate.max(1);
        let bucket = inner
            .throughput
            .entry(phone_number_id.clone())
            .or_insert_with(|| TokenBucket::new(f64::from(rate), rate));
        if bucket.try_take(now).is_err() {
            return graph_error(
                StatusCode::BAD_REQUEST,
                CODE_THROUGHPUT,
                scripted_message(CODE_THROUGHPUT),
                &format!("More than {rate} messages per second from this number."),
            );
        }
    }
    if let Some(pair) = shared.config.pair_rate {
        let bucket = inner
            .pairs
            .entry((phone_number_id.clone(), to.clone()))
            .or_insert_with(|| TokenBucket::new(pair.per_second, pair.burst));
        if bucket.try_take(now).is_err() {
            return graph_error(
                StatusCode::BAD_REQUEST,
                CODE_PAIR_RATE,
                scripted_message(CODE_PAIR_RATE),
                "Too many messages to this user.",
            );
        }
    }
    let wamid = format!("wamid.{}", uuid::Uuid::new_v4().simple());
    inner.sent.push(FakeSent {
        phone_number_id,
        to: to.clone(),
        kind,
        body: request,
        wamid: wamid.clone(),
        time: Utc::now(),
    });
    drop(inner);
    Json(json!({
        "messaging_product": "whatsapp",
        "contacts": [{"input": to, "wa_id": to}],
        "messages": [{"id": wamid}],
    }))
    .into_response()
}

/// The parts of the send body the Cloud API insists on; returns `(to, type)`.
fn check_request(request: &Value) -> Result<(String, String), String> {
    if request.get("messaging_product").and_then(Value::as_str) != Some("whatsapp") {
        return Err("messaging_product must be \"whatsapp\"".into());
    }
    let to = request
        .get("to")
        .and_then(Value::as_str)
        .filter(|to| !to.is_empty() && to.bytes().all(|b| b.is_ascii_digit()))
        .ok_or("to must be the recipient's number in digits")?;
    let kind = request
        .get("type")
        .and_then(Value::as_str)
        .ok_or("type is missing")?;
    let object = request
        .get(kind)
        .filter(|v| v.is_object())
        .ok_or_else(|| format!("the {kind} object is missing"))?;
    match kind {
        "text" => {
            let body = object.get("body").and_then(Value::as_str).unwrap_or("");
            let chars = body.chars().count();
            if chars == 0 || chars > MAX_TEXT_CHARS {
                return Err(format!(
                    "text.body must have 1 to {MAX_TEXT_CHARS} characters, has {chars}"
                ));
            }
        }
        "image" | "video" | "document" | "audio" | "sticker"
            if object.get("link").is_some() == object.get("id").is_some() =>
        {
            return Err(format!("{kind} needs exactly one of link or id"));
        }
        "interactive" if object.get("type").and_then(Value::as_str) == Some("button") => {
            // As the Cloud API: a body and 1 to 3 reply buttons of id + title (20).
            let buttons = object
                .pointer("/action/buttons")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            let reply = |b: &Value| {
                b.get("type").and_then(Value::as_str) == Some("reply")
                    && b.pointer("/reply/id")
                        .and_then(Value::as_str)
                        .is_some_and(|id| !id.is_empty())
                    && b.pointer("/reply/title")
                        .and_then(Value::as_str)
                        .is_some_and(|t| !t.is_empty() && t.chars().count() <= 20)
            };
            let body = object
                .pointer("/body/text")
                .and_then(Value::as_str)
                .is_some();
            if !body || !(1..=3).contains(&buttons.len()) || !buttons.iter().all(reply) {
                return Err("interactive buttons need body.text and 1 to 3 reply buttons with id and a title of at most 20 characters".into());
            }
        }
        "interactive" => {
            // As the Cloud API: a list has a body, a button and 1 to 10 rows of id + title.
            let rows = object
                .pointer("/action/sections")
                .and_then(Value::as_array)
                .map(|sections| {
                    sections
                        .iter()
                        .filter_map(|s| s.get("rows").and_then(Value::as_array))
                        .flatten()
                        .collect::<Vec<_>>()
                })
                .unwrap_or_default();
            let titled = |r: &&Value| {
                r.get("id")
                    .and_then(Value::as_str)
                    .is_some_and(|id| !id.is_empty())
                    && r.get("title")
                        .and_then(Value::as_str)
                        .is_some_and(|t| !t.is_empty() && t.chars().count() <= 24)
            };
            let list = object.get("type").and_then(Value::as_str) == Some("list")
                && object
                    .pointer("/body/text")
                    .and_then(Value::as_str)
                    .is_some()
                && object
                    .pointer("/action/button")
                    .and_then(Value::as_str)
                    .is_some()
                && (1..=10).contains(&rows.len())
                && rows.iter().all(titled);
            if !list {
                return Err("interactive list needs body.text, action.button and 1 to 10 rows with id and a title of at most 24 characters".into());
            }
        }
        "template" => {
            let named = object.get("name").and_then(Value::as_str).is_some();
            let language = object.pointer("/language/code").and_then(Value::as_str);
            if !named || language.is_none() {
                return Err("template needs name and language.code".into());
            }
        }
        _ => {}
    }
    Ok((to.to_string(), kind.to_string()))
}

async fn media_info(
    State(shared): State<Arc<Shared>>,
    Path((version, media_id)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    if !shared.authorized(&headers) {
        return unauthorized();
    }
    if version != shared.config.api_version {
        return unknown_version(&version);
    }
    let inner = shared.lock();
    let Some(media) = inner.media.get(&media_id) else {
        return invalid_parameter(&format!("Object with ID '{media_id}' does not exist"));
    };
    Json(json!({
        "messaging_product": "whatsapp",
        "url": format!("{}/whatsapp_business/attachments?mid={media_id}", shared.base_url),
        "mime_type": media.mime,
        "sha256": media.sha256,
        "file_size": media.bytes.len(),
        "id": media_id,
    }))
    .into_response()
}

#[derive(Deserialize)]
struct DownloadQuery {
    mid: String,
}

async fn media_download(
    State(shared): State<Arc<Shared>>,
    Query(query): Query<DownloadQuery>,
    headers: HeaderMap,
) -> Response {
    if !shared.authorized(&headers) {
        return unauthorized();
    }
    let (media, delay) = {
        let inner = shared.lock();
        (inner.media.get(&query.mid).cloned(), inner.media_delay)
    };
    tokio::time::sleep(delay).await;
    match media {
        Some(media) => ([(header::CONTENT_TYPE, media.mime)], media.bytes).into_response(),
        None => (StatusCode::NOT_FOUND, "no such media").into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_checks() {
        let ok = json!({"messaging_product": "whatsapp", "to": "60123456789", "type": "text",
                        "text": {"body": "hai"}});
        assert_eq!(
            check_request(&ok),
            Ok(("60123456789".into(), "text".into()))
        );
        let mut plus = ok.clone();
        plus["to"] = json!("+60123456789");
        assert!(check_request(&plus).is_err());
        let mut long = ok.clone();
        long["text"]["body"] = json!("a".repeat(MAX_TEXT_CHARS + 1));
        assert!(check_request(&long).unwrap_err().contains("4097"));
        let missing = json!({"messaging_product": "whatsapp", "to": "601", "type": "image"});
        assert!(check_request(&missing).is_err());
        let both = json!({"messaging_product": "whatsapp", "to": "601", "type": "image",
                          "image": {"link": "https://x", "id": "1"}});
        assert!(check_request(&both).is_err());
        let template = json!({"messaging_product": "whatsapp", "to": "601", "type": "template",
                              "template": {"name": "x", "language": "ms"}});
        assert!(check_request(&template).is_err());
        let product = json!({"to": "601", "type": "text", "text": {"body": "x"}});
        assert!(check_request(&product).is_err());
    }
}
