//! Media download against the fake Cloud API (two-step, Bearer-checked), with the size
//! cap, then checked and kept in the object store by hash. The object store contract runs
//! on the local directory and on a real S3-compatible server (deploy/local's S3Proxy).

mod support;

use std::time::Duration;

use sembang::config::Secret;
use sembang::media::{
    check, LocalDirStore, MediaClient, MediaError, MediaLimits, ObjectStore, S3Config, S3Store,
};
use sembang::provider::fake_cloud_api::{FakeCloudApi, FakeConfig};

use support::png_header as png;

#[tokio::test]
async fn cloud_api_media_is_fetched_in_two_steps_checked_and_stored_by_hash() {
    let fake = FakeCloudApi::start(FakeConfig::default()).await;
    let token = Secret::new(fake.access_token());
    let photo = png(1_200, 900, 4_000);
    fake.add_media("MEDIA-1", photo.clone(), "image/jpeg"); // declared JPEG, really PNG
    let client = MediaClient::new(64 * 1024, Duration::from_secs(5)).unwrap();

    let bytes = client
        .cloud_api(&fake.base_url(), fake.api_version(), &token, "MEDIA-1")
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
        .cloud_api(&fake.base_url(), fake.api_version(), &token, "NOPE")
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
            "MEDIA-1",
        )
        .await
        .unwrap_err();
    assert!(
        matches!(wrong, MediaError::Refused { status: 401, .. }),
        "{wrong:?}"
    );
    fake.add_media("BIG", png(10, 10, 100_000), "image/png");
    let big = client
        .cloud_api(&fake.base_url(), fake.api_version(), &token, "BIG")
        .await
        .unwrap_err();
    assert!(matches!(big, MediaError::TooLarge { .. }), "{big:?}");
    assert!(!big.is_transient());
    let bad_id = client
        .cloud_api(&fake.base_url(), fake.api_version(), &token, "../../etc")
        .await
        .unwrap_err();
    assert!(matches!(bad_id, MediaError::Download(_)));
}

#[tokio::test]
async fn unreachable_media_hosts_are_transient_errors_without_the_token() {
    let client = MediaClient::new(1024, Duration::from_secs(2)).unwrap();
    let token = Secret::new("s3cr3t-token");
    let err = client
        .cloud_api("http://127.0.0.1:1", "v21.0", &token, "MEDIA-1")
        .await
        .unwrap_err();
    assert!(err.is_transient(), "{err:?}");
    assert!(!err.to_string().contains("s3cr3t-token"));
    let err = client.fetch("ftp://example/file", None).await.unwrap_err();
    assert!(matches!(err, MediaError::Download(_)));
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
