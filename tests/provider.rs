//! The providers over real HTTP on loopback: CloudApiProvider against FakeCloudApi, and
//! WabotProvider against a small gateway stand-in defined here.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::routing::post;
use axum::{Json, Router};
use serde_json::{json, Value};

use sembang::config::Secret;
use sembang::domain::phone::PhoneNumber;
use sembang::provider::cloud_api::request_body;
use sembang::provider::fake_cloud_api::{FakeCloudApi, FakeConfig, FakeFailure, PairRate};
use sembang::provider::{
    CloudApiConfig, CloudApiProvider, ErrorClass, OutboundContent, OutboundMessage, ProviderError,
    RateLimiter, SandboxProvider, ValidationError, WabotConfig, WabotProvider, WhatsappProvider,
};

const SENDER: &str = "106540352242922";

fn to(number: &str) -> PhoneNumber {
    PhoneNumber::parse(number).unwrap()
}

fn text(body: &str) -> OutboundMessage {
    OutboundMessage {
        to: to("012-345 6789"),
        content: OutboundContent::Text {
            body: body.into(),
            preview_url: false,
        },
    }
}

fn client_for(fake: &FakeCloudApi, timeout: Duration) -> CloudApiProvider {
    let mut config = CloudApiConfig::new(fake.base_url(), fake.api_version());
    config.request_timeout = timeout;
    CloudApiProvider::new(config, Secret::new(fake.access_token())).unwrap()
}

async fn fake_and_client(config: FakeConfig) -> (FakeCloudApi, CloudApiProvider) {
    let fake = FakeCloudApi::start(config).await;
    let client = client_for(&fake, Duration::from_secs(5));
    (fake, client)
}

/// A loopback port that nothing listens on.
async fn closed_port() -> u16 {
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0))
        .await
        .unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    port
}

#[tokio::test]
async fn sends_every_content_type() {
    let (fake, client) = fake_and_client(FakeConfig::default()).await;
    let contents = [
        OutboundContent::Text {
            body: "Terima kasih kerana mendaftar!".into(),
            preview_url: true,
        },
        OutboundContent::Image {
            link: Some("https://cdn.example/promo.jpg".into()),
            media_id: None,
            caption: Some("Promosi Merdeka".into()),
        },
        OutboundContent::Video {
            link: None,
            media_id: Some("1037543291543636".into()),
            caption: None,
        },
        OutboundContent::Template {
            name: "tier_upgrade".into(),
            language: "ms".into(),
            components: json!([{"type": "body", "parameters": [{"type": "text", "text": "Gold"}]}]),
        },
        sembang::engine::apply::marital_question_content(),
        sembang::engine::apply::consent_question_content("Boleh kami hantar promosi?"),
    ];
    let mut wamids = Vec::new();
    for content in &contents {
        let message = OutboundMessage {
            to: to("+60 11-2345 6789"),
            content: content.clone(),
        };
        let accepted = client.send(SENDER, &message).await.unwrap();
        assert!(accepted.wamid.starts_with("wamid."), "{}", accepted.wamid);
        wamids.push(accepted.wamid);
    }
    let sent = fake.sent();
    assert_eq!(sent.len(), contents.len());
    for ((record, content), wamid) in sent.iter().zip(&contents).zip(&wamids) {
        assert_eq!(record.phone_number_id, SENDER);
        assert_eq!(record.to, "601123456789");
        assert_eq!(record.kind, content.kind());
        assert_eq!(&record.wamid, wamid);
        let expected = request_body(&OutboundMessage {
            to: to("+60 11-2345 6789"),
            content: content.clone(),
        });
        assert_eq!(record.body, expected);
    }
    assert_eq!(sent[3].body["template"]["language"], json!({"code": "ms"}));
    assert_eq!(sent[4].body["interactive"]["type"], "list");
    assert_eq!(
        sent[4].body["interactive"]["action"]["sections"][0]["rows"][1],
        json!({"id": "marital:married", "title": "Married / Berkahwin"})
    );
    assert_eq!(sent[5].body["interactive"]["type"], "button");
    assert_eq!(
        sent[5].body["interactive"]["action"]["buttons"][0],
        json!({"type": "reply", "reply": {"id": "consent:yes", "title": "Ya / Yes"}})
    );
    assert_ne!(wamids[0], wamids[1]);
}

#[tokio::test]
async fn wrong_token_is_a_permanent_401() {
    let fake = FakeCloudApi::start(FakeConfig::default()).await;
    let client = CloudApiProvider::new(
        CloudApiConfig::new(fake.base_url(), fake.api_version()),
        Secret::new("not-the-token"),
    )
    .unwrap();
    let err = client.send(SENDER, &text("hai")).await.unwrap_err();
    assert!(
        matches!(
            err,
            ProviderError::Api {
                status: 401,
                code: 190,
                ..
            }
        ),
        "{err:?}"
    );
    assert_eq!(err.class(), ErrorClass::Permanent);
    assert!(!err.to_string().contains("not-the-token"));
    assert!(fake.sent().is_empty());
}

#[tokio::test]
async fn scripted_codes_are_classified() {
    let (fake, client) = fake_and_client(FakeConfig::default()).await;
    fake.fail_next(
        1,
        FakeFailure::Code {
            http_status: 400,
            code: 131026,
        },
    );
    fake.fail_next(
        2,
        FakeFailure::Code {
            http_status: 400,
            code: 130429,
        },
    );
    fake.fail_next(1, FakeFailure::ServerError(500));

    let undeliverable = client.send(SENDER, &text("a")).await.unwrap_err();
    assert_eq!(undeliverable.code(), Some(131026));
    assert_eq!(undeliverable.class(), ErrorClass::Permanent);
    assert!(
        matches!(&undeliverable, ProviderError::Api { status: 400, details: Some(d), .. } if !d.is_empty()),
        "{undeliverable:?}"
    );
    for _ in 0..2 {
        let throttled = client.send(SENDER, &text("b")).await.unwrap_err();
        assert_eq!(throttled.code(), Some(130429));
        assert_eq!(throttled.class(), ErrorClass::RateLimited);
    }
    let server = client.send(SENDER, &text("c")).await.unwrap_err();
    assert!(
        matches!(&server, ProviderError::Http { status: 500, body } if body.contains("fake server error")),
        "{server:?}"
    );
    assert_eq!(server.class(), ErrorClass::Transient);
    // The script is used up: the next one goes through.
    client.send(SENDER, &text("d")).await.unwrap();
    assert_eq!(fake.sent().len(), 1);
}

#[tokio::test]
async fn slow_answers_time_out_but_the_message_may_still_go() {
    let fake = FakeCloudApi::start(FakeConfig::default()).await;
    let client = client_for(&fake, Duration::from_millis(200));
    fake.fail_next(1, FakeFailure::Delay(Duration::from_secs(3)));
    let started = Instant::now();
    let err = client.send(SENDER, &text("lambat")).await.unwrap_err();
    assert_eq!(err, ProviderError::Timeout(Duration::from_millis(200)));
    assert_eq!(err.class(), ErrorClass::OutcomeUnknown);
    assert!(started.elapsed() < Duration::from_secs(2));
    // The server had accepted it: why the sender must treat a timeout as "outcome unknown".
    assert_eq!(fake.sent().len(), 1);
}

#[tokio::test]
async fn closed_port_is_unreachable() {
    let port = closed_port().await;
    let client = CloudApiProvider::new(
        CloudApiConfig::new(format!("http://127.0.0.1:{port}"), "v21.0"),
        Secret::new("tok-never-shown"),
    )
    .unwrap();
    let err = client.send(SENDER, &text("hai")).await.unwrap_err();
    assert!(matches!(err, ProviderError::Unreachable(_)), "{err:?}");
    assert_eq!(err.class(), ErrorClass::Transient);
    assert!(!err.to_string().contains("tok-never-shown"));
}

#[tokio::test]
async fn invalid_messages_fail_before_any_request() {
    // Pointed at a closed port: reaching the network would give Unreachable instead.
    let port = closed_port().await;
    let client = CloudApiProvider::new(
        CloudApiConfig::new(format!("http://127.0.0.1:{port}"), "v21.0"),
        Secret::new("t"),
    )
    .unwrap();
    let err = client
        .send(SENDER, &text(&"a".repeat(4097)))
        .await
        .unwrap_err();
    assert_eq!(
        err,
        ProviderError::InvalidMessage(ValidationError::TextTooLong {
            chars: 4097,
            max: 4096
        })
    );
    assert_eq!(err.class(), ErrorClass::Permanent);
    let err = client.send(SENDER, &text("")).await.unwrap_err();
    assert_eq!(
        err,
        ProviderError::InvalidMessage(ValidationError::EmptyText)
    );
    let err = client.send("../admin", &text("x")).await.unwrap_err();
    assert_eq!(
        err,
        ProviderError::InvalidMessage(ValidationError::BadPhoneNumberId)
    );
}

#[tokio::test]
async fn wrong_api_version_is_refused() {
    let fake = FakeCloudApi::start(FakeConfig::default()).await;
    let client = CloudApiProvider::new(
        CloudApiConfig::new(fake.base_url(), "v1.0"),
        Secret::new(fake.access_token()),
    )
    .unwrap();
    let err = client.send(SENDER, &text("hai")).await.unwrap_err();
    assert_eq!(err.code(), Some(2500));
    assert_eq!(err.class(), ErrorClass::Permanent);
}

#[tokio::test]
async fn throughput_over_the_limit_gets_130429() {
    let (fake, client) = fake_and_client(FakeConfig {
        messages_per_second: Some(3),
        ..FakeConfig::default()
    })
    .await;
    let message = text("serentak");
    let started = Instant::now();
    let results = futures::future::join_all((0..12).map(|_| client.send(SENDER, &message))).await;
    let elapsed = started.elapsed();
    let accepted = results.iter().filter(|r| r.is_ok()).count();
    for err in results.iter().filter_map(|r| r.as_ref().err()) {
        assert_eq!(err.code(), Some(130429), "{err:?}");
        assert_eq!(err.class(), ErrorClass::RateLimited);
    }
    // Burst of 3, plus 3 per second of the time the batch took.
    let allowed = 3 + (elapsed.as_secs_f64() * 3.0).ceil() as usize;
    assert!(accepted >= 3, "{accepted}");
    assert!(accepted <= allowed, "{accepted} accepted in {elapsed:?}");
    assert!(accepted < 12, "no request was throttled in {elapsed:?}");
    assert_eq!(fake.sent().len(), accepted);
    // Another business number has its own allowance.
    client.send("222222", &message).await.unwrap();
}

#[tokio::test]
async fn rate_limiter_keeps_under_the_throughput() {
    let (fake, client) = fake_and_client(FakeConfig {
        messages_per_second: Some(20),
        ..FakeConfig::default()
    })
    .await;
    let limiter = RateLimiter::new(20.0, 5);
    let started = Instant::now();
    for i in 0..30 {
        limiter.until_ready(SENDER).await;
        client
            .send(SENDER, &text(&format!("mesej {i}")))
            .await
            .unwrap_or_else(|e| panic!("message {i}: {e}"));
    }
    // 5 from the burst, 25 at 20/s.
    assert!(started.elapsed() >= Duration::from_millis(1200));
    assert_eq!(fake.sent().len(), 30);
}

#[tokio::test]
async fn pair_rate_gets_131056() {
    let (fake, client) = fake_and_client(FakeConfig {
        pair_rate: Some(PairRate {
            per_second: 1.0 / 6.0,
            burst: 1,
        }),
        ..FakeConfig::default()
    })
    .await;
    client.send(SENDER, &text("satu")).await.unwrap();
    let err = client.send(SENDER, &text("dua")).await.unwrap_err();
    assert_eq!(err.code(), Some(131056));
    assert_eq!(err.class(), ErrorClass::RateLimited);
    let other_user = OutboundMessage {
        to: to("019-876 5432"),
        ..text("tiga")
    };
    client.send(SENDER, &other_user).await.unwrap();
    assert_eq!(fake.sent().len(), 2);
}

#[tokio::test]
async fn serves_media_like_the_cloud_api() {
    let fake = FakeCloudApi::start(FakeConfig::default()).await;
    let bytes = b"\xff\xd8\xff\xe0 fake jpeg".to_vec();
    fake.add_media("4490709327384033", bytes.clone(), "image/jpeg");
    let http = reqwest::Client::new();
    let token = fake.access_token().to_string();

    let info_url = format!(
        "{}/{}/4490709327384033",
        fake.base_url(),
        fake.api_version()
    );
    let info: Value = http
        .get(&info_url)
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(info["id"], "4490709327384033");
    assert_eq!(info["mime_type"], "image/jpeg");
    assert_eq!(info["file_size"], bytes.len());
    use sha2::Digest;
    assert_eq!(info["sha256"], hex::encode(sha2::Sha256::digest(&bytes)));

    let url = info["url"].as_str().unwrap();
    assert!(url.starts_with(&fake.base_url()));
    let download = http.get(url).bearer_auth(&token).send().await.unwrap();
    assert_eq!(download.status(), 200);
    assert_eq!(download.headers()["content-type"], "image/jpeg");
    assert_eq!(download.bytes().await.unwrap().as_ref(), bytes.as_slice());

    for unauthorized in [&info_url, url] {
        let response = http
            .get(unauthorized)
            .bearer_auth("wrong")
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 401);
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"]["code"], 190);
    }
    let missing = http
        .get(format!("{}/{}/999", fake.base_url(), fake.api_version()))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), 400);
}

#[tokio::test]
async fn shutdown_stops_the_server() {
    let fake = FakeCloudApi::start(FakeConfig::default()).await;
    let client = client_for(&fake, Duration::from_secs(2));
    client.send(SENDER, &text("hai")).await.unwrap();
    fake.shutdown().await;
    let err = client.send(SENDER, &text("lagi")).await.unwrap_err();
    assert_eq!(err.class(), ErrorClass::Transient, "{err:?}");
}

// --- wabot.my ---------------------------------------------------------------------------

const WABOT_TOKEN: &str = "wabot-secret-token";

/// Answers like the gateway: success with a key id, or `status: error` for a wrong token;
/// a number ending in 0 gets a 502 HTML page.
async fn start_wabot() -> (String, Arc<Mutex<Vec<Value>>>) {
    let seen: Arc<Mutex<Vec<Value>>> = Arc::default();
    let record = seen.clone();
    let app = Router::new().route(
        "/send",
        post(move |Json(body): Json<Value>| {
            let record = record.clone();
            async move {
                use axum::response::IntoResponse;
                record.lock().unwrap().push(body.clone());
                if body["number"].as_str().is_some_and(|n| n.ends_with('0')) {
                    return (
                        axum::http::StatusCode::BAD_GATEWAY,
                        "<html>502 Bad Gateway</html>",
                    )
                        .into_response();
                }
                if body["access_token"] != WABOT_TOKEN {
                    return Json(json!({"status": "error",
                        "message": format!("Invalid access token {}", body["access_token"])}))
                    .into_response();
                }
                Json(json!({"status": "success", "message": "Message sent",
                    "data": {"key": {"id": "3EB0C767D26A1D2B"}}}))
                .into_response()
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0))
        .await
        .unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (base, seen)
}

fn wabot(base: &str, token: &str) -> WabotProvider {
    WabotProvider::new(WabotConfig::new(base, "INSTANCE42"), Secret::new(token)).unwrap()
}

#[tokio::test]
async fn wabot_sends_text_and_media() {
    let (base, seen) = start_wabot().await;
    let provider = wabot(&base, WABOT_TOKEN);
    let accepted = provider
        .send(SENDER, &text("Hai dari wabot"))
        .await
        .unwrap();
    assert_eq!(accepted.wamid, "3EB0C767D26A1D2B");
    let image = OutboundMessage {
        to: to("012-345 6789"),
        content: OutboundContent::Image {
            link: Some("https://cdn.example/baucar.png".into()),
            media_id: None,
            caption: Some("Baucar RM10".into()),
        },
    };
    provider.send(SENDER, &image).await.unwrap();
    let seen = seen.lock().unwrap().clone();
    assert_eq!(
        seen[0],
        json!({"number": "60123456789", "type": "text", "message": "Hai dari wabot",
               "instance_id": "INSTANCE42", "access_token": WABOT_TOKEN})
    );
    assert_eq!(seen[1]["type"], "media");
    assert_eq!(seen[1]["media_url"], "https://cdn.example/baucar.png");
    assert_eq!(seen[1]["filename"], "baucar.png");
    assert_eq!(seen[1]["message"], "Baucar RM10");
}

#[tokio::test]
async fn wabot_failures() {
    let (base, seen) = start_wabot().await;
    let wrong = wabot(&base, "wrong-wabot-token");
    let err = wrong.send(SENDER, &text("hai")).await.unwrap_err();
    assert!(
        matches!(&err, ProviderError::Rejected { status: 200, message } if message.contains("Invalid access token")),
        "{err:?}"
    );
    assert_eq!(err.class(), ErrorClass::Permanent);
    assert!(!err.to_string().contains("wrong-wabot-token"), "{err}");

    let provider = wabot(&base, WABOT_TOKEN);
    let to_zero = OutboundMessage {
        to: to("012-345 6780"),
        ..text("hai")
    };
    let err = provider.send(SENDER, &to_zero).await.unwrap_err();
    assert!(
        matches!(err, ProviderError::Http { status: 502, .. }),
        "{err:?}"
    );
    // A gateway error: the gateway may have passed the message on.
    assert_eq!(err.class(), ErrorClass::OutcomeUnknown);

    let requests_before = seen.lock().unwrap().len();
    let template = OutboundMessage {
        to: to("012-345 6789"),
        content: OutboundContent::Template {
            name: "promo".into(),
            language: "ms".into(),
            components: json!([]),
        },
    };
    let err = provider.send(SENDER, &template).await.unwrap_err();
    assert_eq!(
        err,
        ProviderError::Unsupported {
            provider: "wabot",
            what: "templates"
        }
    );
    assert_eq!(err.class(), ErrorClass::Permanent);
    assert_eq!(seen.lock().unwrap().len(), requests_before);

    let port = closed_port().await;
    let err = wabot(&format!("http://127.0.0.1:{port}"), WABOT_TOKEN)
        .send(SENDER, &text("hai"))
        .await
        .unwrap_err();
    assert!(matches!(err, ProviderError::Unreachable(_)), "{err:?}");
}

#[tokio::test]
async fn providers_share_one_interface() {
    let fake = FakeCloudApi::start(FakeConfig::default()).await;
    let providers: Vec<Box<dyn WhatsappProvider>> = vec![
        Box::new(SandboxProvider::new()),
        Box::new(client_for(&fake, Duration::from_secs(5))),
        Box::new(wabot("http://127.0.0.1:9", WABOT_TOKEN)),
    ];
    let names: Vec<_> = providers.iter().map(|p| p.name()).collect();
    assert_eq!(names, ["sandbox", "cloud_api", "wabot"]);
    for provider in &providers[..2] {
        provider.send(SENDER, &text("hai")).await.unwrap();
    }
    assert_eq!(fake.sent().len(), 1);
}
