//! Media download against the fake Cloud API (two-step, Bearer-checked), with the size
//! cap, then checked and kept in the object store by hash.

use std::time::Duration;

use sembang::config::Secret;
use sembang::media::{check, LocalDirStore, MediaClient, MediaError, MediaLimits, ObjectStore};
use sembang::provider::fake_cloud_api::{FakeCloudApi, FakeConfig};

fn png(width: u32, height: u32, padding: usize) -> Vec<u8> {
    let mut bytes = vec![0x89, b'P', b'N', b'G', 0x0D, 0x0A, 0x1A, 0x0A];
    bytes.extend_from_slice(&13u32.to_be_bytes());
    bytes.extend_from_slice(b"IHDR");
    bytes.extend_from_slice(&width.to_be_bytes());
    bytes.extend_from_slice(&height.to_be_bytes());
    bytes.extend_from_slice(&[8, 2, 0, 0, 0, 0, 0, 0, 0]);
    bytes.extend(std::iter::repeat_n(0u8, padding));
    bytes
}

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
