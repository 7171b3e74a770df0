//! Media download against the fake Cloud API (two-step, Bearer-checked), with the size
//! cap, then checked and kept in the object store by hash. The object store contract runs
//! on the local directory and on a real S3-compatible server (deploy/local's S3Proxy).

mod support;

use std::time::Duration;

use sembang::config::Secret;
use sembang::media::{
    check, HostAllowlist, LocalDirStore, MediaClient, MediaError, MediaLimits, ObjectStore,
    S3Config, S3Store,
};
use sembang::provider::fake_cloud_api::{FakeCloudApi, FakeConfig};

use support::png_header as png;

#[tokio::test]
async fn cloud_api_media_is_fetched_in_two_steps_checked_and_stored_by_hash() {
    let fake = FakeCloudApi::start(FakeConfig::default()).await;
    let token = Secret::new(fake.access_token());
    let photo = png(1_200, 900, 4_000);
    fake.add_media("1001", photo.clone(), "image/jpeg"); // declared JPEG, really PNG
    let client = MediaClient::new(64 * 1024, Duration::from_secs(5), true).unwrap();
    let fake_host = HostAllowlist::new(&["127.0.0.1".into()]);

    let bytes = client
        .cloud_api(
            &fake.base_url(),
            fake.api_version(),
            &token,
            "1001",
            &fake_host,
        )
        .await
        .unwrap();
    assert_eq!(bytes, photo);
    let checked = check(&bytes, &MediaLimits::default()).unwrap();
    assert_eq!(
        checked.format.mime(),
        "image/png",
        "the bytes decide, not the declared type"
    );

    let dir = tempfile::tempdir().unwrap();
    let store = LocalDirStore::new(dir.path());
    let reference = store.put(&checked.key(), &bytes).await.unwrap();
    assert!(reference.contains(&checked.sha256));
    assert_eq!(store.get(&checked.key()).await.unwrap().unwrap(), photo);

    // Unknown media, wrong token, and an oversized file.
    let unknown = client
        .cloud_api(
            &fake.base_url(),
            fake.api_version(),
            &token,
            "404",
            &fake_host,
        )
        .await
        .unwrap_err();
    assert!(
        matches!(unknown, MediaError::Refused { status: 400, .. }),
        "{unknown:?}"
    );
    let wrong = client
        .cloud_api(
            &fake.base_url(),
            fake.api_version(),
            &Secret::new("wrong"),
            "1001",
            &fake_host,
        )
        .await
        .unwrap_err();
    assert!(
        matches!(wrong, MediaError::Refused { status: 401, .. }),
        "{wrong:?}"
    );
    fake.add_media("1002", png(10, 10, 100_000), "image/png");
    let big = client
        .cloud_api(
            &fake.base_url(),
            fake.api_version(),
            &token,
            "1002",
            &fake_host,
        )
        .await
        .unwrap_err();
    assert!(matches!(big, MediaError::TooLarge { .. }), "{big:?}");
    assert!(!big.is_transient());
    for bad_id in [
        "../../etc",
        "MEDIA-1",
        "stored:x.jpg",
        "https://example.com/x",
    ] {
        let refused = client
            .cloud_api(
                &fake.base_url(),
                fake.api_version(),
                &token,
                bad_id,
                &fake_host,
            )
            .await
            .unwrap_err();
        assert!(matches!(refused, MediaError::Forbidden { .. }), "{bad_id}");
        assert!(!refused.is_transient());
    }
    // The media endpoint's URL must be on the Cloud API's host list.
    let elsewhere = client
        .cloud_api(
            &fake.base_url(),
            fake.api_version(),
            &token,
            "1001",
            &HostAllowlist::new(&["lookaside.fbsbx.com".into()]),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(elsewhere, MediaError::Forbidden { .. }),
        "{elsewhere:?}"
    );
}

/// A media host on the allowlist that resolves inside the network, or bounces the fetch to
/// another host, is refused before any byte is read, and not retried.
#[tokio::test]
async fn media_fetches_stay_on_public_allowed_hosts() {
    use axum::response::Redirect;
    use axum::routing::get;

    let app = axum::Router::new()
        .route("/photo.jpg", get(|| async { png(10, 10, 100) }))
        .route(
            "/elsewhere",
            get(|| async { Redirect::temporary("http://127.0.0.2:1/photo.jpg") }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = tokio::spawn(async move { axum::serve(listener, app).await });
    let hosts = HostAllowlist::new(&["localhost".into(), "127.0.0.1".into()]);

    // Private addresses allowed (a test or on-prem gateway): fetched.
    let open = MediaClient::new(1 << 20, Duration::from_secs(5), true).unwrap();
    let url = format!("http://localhost:{port}/photo.jpg");
    assert_eq!(
        open.fetch(&url, None, &hosts).await.unwrap(),
        png(10, 10, 100)
    );

    // The deployment default: a name resolving to loopback, or loopback written out, refused.
    let guarded = MediaClient::new(1 << 20, Duration::from_secs(5), false).unwrap();
    for url in [
        format!("http://localhost:{port}/photo.jpg"),
        format!("http://127.0.0.1:{port}/photo.jpg"),
    ] {
        let refused = guarded.fetch(&url, None, &hosts).await.unwrap_err();
        assert!(
            matches!(refused, MediaError::Forbidden { .. }),
            "{url}: {refused:?}"
        );
        assert!(!refused.is_transient());
    }
    // A redirect to another host is not followed, even with private addresses allowed.
    let bounced = open
        .fetch(&format!("http://127.0.0.1:{port}/elsewhere"), None, &hosts)
        .await
        .unwrap_err();
    assert!(
        matches!(bounced, MediaError::Forbidden { .. }),
        "{bounced:?}"
    );
    server.abort();
}

#[tokio::test]
async fn unreachable_media_hosts_are_transient_errors_without_the_token() {
    let client = MediaClient::new(1024, Duration::from_secs(2), true).unwrap();
    let token = Secret::new("s3cr3t-token");
    let hosts = HostAllowlist::new(&["127.0.0.1".into()]);
    let err = client
        .cloud_api("http://127.0.0.1:1", "v21.0", &token, "1001", &hosts)
        .await
        .unwrap_err();
    assert!(err.is_transient(), "{err:?}");
    assert!(!err.to_string().contains("s3cr3t-token"));
    let err = client
        .fetch("ftp://example/file", None, &hosts)
        .await
        .unwrap_err();
    assert!(matches!(err, MediaError::Forbidden { .. }));
}

/// What every object store does: first copy wins, missing is `None`, odd keys are refused.
async fn object_store_contract(store: &dyn ObjectStore, reference_prefix: &str) {
    let photo = png(3_000, 2_000, 2 * 1024 * 1024);
    let checked = check(&photo, &MediaLimits::default()).unwrap();
    let key = checked.key();
    let reference = store.put(&key, &photo).await.unwrap();
    assert!(
        reference.starts_with(reference_prefix) && reference.ends_with(&key),
        "{reference}"
    );
    assert_eq!(store.get(&key).await.unwrap().unwrap(), photo);
    // The same key again (a replayed job): the first copy stays.
    assert_eq!(store.put(&key, b"other bytes").await.unwrap(), reference);
    assert_eq!(store.get(&key).await.unwrap().unwrap(), photo);
    let missing = format!("{}.jpg", "0".repeat(64));
    assert_eq!(store.get(&missing).await.unwrap(), None);
    for bad in ["../escape.jpg", "a/b.jpg", "UPPER.JPG", "x"] {
        assert!(
            matches!(store.put(bad, b"x").await, Err(MediaError::Store(_))),
            "{bad}"
        );
    }
    // Retention: by prefix ("card." for card photos), or "" for every photo; only what
    // was written before the cut-off.
    let card = format!("card.{}.jpg", "ab".repeat(32));
    store.put(&card, b"card").await.unwrap();
    let past = chrono::Utc::now() - chrono::Duration::hours(1);
    let soon = chrono::Utc::now() + chrono::Duration::seconds(30);
    assert_eq!(store.delete_older("", past).await.unwrap(), 0);
    assert_eq!(store.delete_older("card.", soon).await.unwrap(), 1);
    assert!(
        store.get(&key).await.unwrap().is_some(),
        "another prefix stays"
    );
    assert_eq!(store.delete_older("", soon).await.unwrap(), 1);
    assert_eq!(store.get(&key).await.unwrap(), None);
}

fn s3_config(endpoint: &str, prefix: &str) -> S3Config {
    S3Config {
        bucket: support::S3_BUCKET.into(),
        prefix: prefix.into(),
        endpoint: Some(endpoint.into()),
        region: "us-east-1".into(),
        allow_http: true,
        credentials: Some((support::S3_IDENTITY.into(), support::S3_CREDENTIAL.into())),
        timeout: Duration::from_secs(3),
    }
}

#[tokio::test]
async fn local_directory_object_store_keeps_the_contract() {
    let dir = tempfile::tempdir().unwrap();
    object_store_contract(&LocalDirStore::new(dir.path()), "file://").await;
}

#[tokio::test]
async fn s3_object_store_keeps_the_contract_on_a_real_server() {
    let Some(endpoint) = support::service(support::S3) else {
        return;
    };
    let prefix = format!("{}/", support::unique_name("media"));
    let store = S3Store::new(&s3_config(&endpoint, &prefix)).unwrap();
    object_store_contract(&store, &format!("s3://{}/{prefix}", support::S3_BUCKET)).await;
}

#[tokio::test]
async fn s3_refusals_and_outages_are_typed_store_errors() {
    let Some(endpoint) = support::service(support::S3) else {
        return;
    };
    let key = format!("{}.png", "ab".repeat(32));
    let mut wrong = s3_config(&endpoint, "media/");
    wrong.credentials = Some((support::S3_IDENTITY.into(), "not-the-secret".into()));
    let error = S3Store::new(&wrong)
        .unwrap()
        .put(&key, b"x")
        .await
        .unwrap_err();
    assert!(matches!(error, MediaError::Store(_)), "{error:?}");

    // Nothing listens on port 1: an error within the configured bound, worth a retry.
    let started = std::time::Instant::now();
    let down = S3Store::new(&s3_config("http://127.0.0.1:1", "media/")).unwrap();
    let error = down.get(&key).await.unwrap_err();
    assert!(error.is_transient(), "{error:?}");
    assert!(started.elapsed() < Duration::from_secs(20), "bounded");
}
