//! Original photos in an S3 bucket, or any S3-compatible store (MinIO, Ceph, S3Proxy): the
//! production object store, shared by every OCR process. Objects are written with
//! `If-None-Match: *`, so the same photo stored twice keeps the first copy, as on disk.

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use object_store::aws::{AmazonS3, AmazonS3Builder};
use object_store::path::Path;
use object_store::RetryConfig;

use super::store::{delete_listed_older, delete_one, get_bytes, put_once, valid_key};
use super::{MediaError, ObjectStore};

/// How to reach the bucket.
#[derive(Clone, Debug)]
pub struct S3Config {
    pub bucket: String,
    /// Prepended to every key (e.g. `media/`).
    pub prefix: String,
    /// None: AWS itself. Some: an S3-compatible endpoint, addressed path-style.
    pub endpoint: Option<String>,
    pub region: String,
    pub allow_http: bool,
    /// None: from AWS_* variables or the instance's role.
    pub credentials: Option<(String, String)>,
    /// Bounds every request with its retries, so an unreachable store is a prompt error.
    pub timeout: Duration,
}

pub struct S3Store {
    store: AmazonS3,
    bucket: String,
    prefix: String,
}

impl S3Store {
    pub fn new(config: &S3Config) -> Result<S3Store, MediaError> {
        let mut builder = AmazonS3Builder::from_env()
            .with_bucket_name(&config.bucket)
            .with_region(&config.region)
            .with_allow_http(config.allow_http)
            .with_retry(RetryConfig {
                max_retries: 2,
                retry_timeout: config.timeout,
                ..RetryConfig::default()
            });
        if let Some(endpoint) = &config.endpoint {
            builder = builder
                .with_endpoint(endpoint)
                .with_virtual_hosted_style_request(false);
        }
        if let Some((id, secret)) = &config.credentials {
            builder = builder
                .with_access_key_id(id)
                .with_secret_access_key(secret);
        }
        let store = builder
            .build()
            .map_err(|e| MediaError::Store(format!("S3 configuration: {e}")))?;
        Ok(S3Store {
            store,
            bucket: config.bucket.clone(),
            prefix: config.prefix.clone(),
        })
    }

    fn path(&self, key: &str) -> Result<Path, MediaError> {
        if !valid_key(key) {
            return Err(MediaError::Store(format!("invalid object key {key:?}")));
        }
        Ok(Path::from(format!("{}{key}", self.prefix)))
    }
}

#[async_trait]
impl ObjectStore for S3Store {
    async fn put(&self, key: &str, bytes: &[u8]) -> Result<String, MediaError> {
        let path = self.path(key)?;
        put_once(&self.store, &path, bytes).await?;
        Ok(format!("s3://{}/{path}", self.bucket))
    }

    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, MediaError> {
        get_bytes(&self.store, &self.path(key)?).await
    }

    async fn delete(&self, key: &str) -> Result<(), MediaError> {
        delete_one(&self.store, &self.path(key)?).await
    }

    /// Lists the whole prefix (keys are hashes, so nothing narrower exists); a bucket
    /// lifecycle rule does the same job without the listing.
    async fn delete_older(
        &self,
        key_prefix: &str,
        before: DateTime<Utc>,
    ) -> Result<usize, MediaError> {
        let listed = Path::from(self.prefix.trim_end_matches('/'));
        delete_listed_older(&self.store, &listed, key_prefix, before).await
    }
}
