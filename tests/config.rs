//! Profiles load and validate; environment overrides and bad values name their key.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use sembang::config::{
    load_with, BusBackend, ConfigError, ConfigSource, LoadRequest, ProviderKind, Role, StoreBackend,
};
use sembang::domain::money::Money;

fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn real_files(path: &Path) -> std::io::Result<String> {
    std::fs::read_to_string(path)
}

fn from_text(text: &'static str) -> impl Fn(&Path) -> std::io::Result<String> {
    move |_| Ok(text.to_string())
}

fn file_request() -> LoadRequest {
    LoadRequest {
        config_file: Some(PathBuf::from("inline.toml")),
        profile: None,
    }
}

#[test]
fn embedded_is_the_default_profile() {
    let settings = load_with(&LoadRequest::default(), &env(&[]), real_files).unwrap();
    assert_eq!(
        settings.source,
        ConfigSource::BuiltinProfile("embedded".into())
    );
    let config = settings.config;
    assert_eq!(config.bus.backend, BusBackend::Embedded);
    assert_eq!(config.store.backend, StoreBackend::Embedded);
    assert_eq!(config.whatsapp.provider, ProviderKind::Sandbox);
    assert!(!config.admin.require_api_key);
    assert_eq!(config.engine.roles.len(), 6);
    assert!(config.engine.roles.contains(&sembang::config::Role::Api));
    assert_eq!(config.tiers.gold_from, Money::from_ringgit(2000));
}

#[test]
fn local_profile_points_at_the_loopback_stack() {
    let settings = load_with(
        &LoadRequest::default(),
        &env(&[("SEMBANG_PROFILE", "local")]),
        real_files,
    )
    .unwrap();
    assert_eq!(settings.config.bus.backend, BusBackend::Kafka);
    assert_eq!(settings.config.bus.kafka_brokers, "127.0.0.1:9092");
    assert_eq!(
        settings.config.store.scylla_nodes,
        vec!["127.0.0.1:9042".to_string()]
    );
    assert!(settings.config.admin.require_api_key);
}

#[test]
fn committed_profile_files_all_validate() {
    for file in [
        "config/embedded.toml",
        "config/local.toml",
        "config/production.example.toml",
    ] {
        let request = LoadRequest {
            config_file: Some(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(file)),
            profile: None,
        };
        // Production listens on every interface, so its webhook needs the app secret.
        let secret = env(&[("SEMBANG_WHATSAPP_APP_SECRET", "s3cret")]);
        let settings =
            load_with(&request, &secret, real_files).unwrap_or_else(|e| panic!("{file}: {e}"));
        assert!(matches!(settings.source, ConfigSource::File(_)));
    }
}

#[test]
fn environment_overrides_every_kind_of_key() {
    let settings = load_with(
        &LoadRequest::default(),
        &env(&[
            ("SEMBANG_HTTP_LISTEN", "127.0.0.1:9999"),
            ("SEMBANG_BUS_PARTITIONS", "3"),
            ("SEMBANG_ADMIN_REQUIRE_API_KEY", "true"),
            ("SEMBANG_ENGINE_ROLES", "ingress,engine"),
            ("SEMBANG_TIERS_GOLD_FROM", "2500.50"),
        ]),
        real_files,
    )
    .unwrap();
    let config = settings.config;
    assert_eq!(config.http.listen, "127.0.0.1:9999");
    assert_eq!(config.bus.partitions, 3);
    assert!(config.admin.require_api_key);
    assert_eq!(config.engine.roles, vec![Role::Ingress, Role::Engine]);
    assert_eq!(config.tiers.gold_from, Money::from_sen(250_050));
    assert_eq!(
        settings.overridden,
        vec![
            "admin.require_api_key",
            "bus.partitions",
            "engine.roles",
            "http.listen",
            "tiers.gold_from"
        ]
    );
}

fn error_text(result: Result<sembang::config::Settings, ConfigError>) -> String {
    result.map(|_| ()).unwrap_err().to_string()
}

#[test]
fn invalid_values_name_their_key() {
    let cases: [(&'static str, &str); 11] = [
        ("[bus]\npartitions = 0\n", "bus.partitions"),
        ("[http]\nlisten = \"not an address\"\n", "http.listen"),
        ("[http]\nmax_body_bytes = \"big\"\n", "http.max_body_bytes"),
        ("[tiers]\ngold_from = 100\n", "tiers"),
        ("[tiers]\nsilver_from = \"lots\"\n", "tiers.silver_from"),
        (
            "[engine]\nroles = [\"ingress\", \"juggler\"]\n",
            "engine.roles",
        ),
        (
            "[whatsapp]\nprovider = \"cloud_api\"\n",
            "whatsapp.phone_number_id",
        ),
        ("[media]\nstore = \"s3\"\n", "media.s3_bucket"),
        (
            "[whatsapp]\nrequest_timeout_ms = 5\n",
            "whatsapp.request_timeout_ms",
        ),
        (
            "[whatsapp]\nsend_budget_ms = 10\n",
            "whatsapp.send_budget_ms",
        ),
        (
            "[media]\nstore = \"s3\"\ns3_bucket = \"b\"\ns3_endpoint = \"http://minio:9000\"\n",
            "media.s3_allow_http",
        ),
    ];
    for (text, key) in cases {
        let message = error_text(load_with(&file_request(), &env(&[]), from_text(text)));
        assert!(
            message.contains(key),
            "{text:?} gave {message:?}, expected key {key}"
        );
    }
}

#[test]
fn unknown_keys_in_files_are_rejected() {
    let message = error_text(load_with(
        &file_request(),
        &env(&[]),
        from_text("[bus]\npartitons = 3\n"),
    ));
    assert!(message.contains("partitons"), "{message}");
    let message = error_text(load_with(
        &file_request(),
        &env(&[]),
        from_text("[busses]\n"),
    ));
    assert!(message.contains("busses"), "{message}");
}

#[test]
fn syntax_errors_name_the_file() {
    let message = error_text(load_with(&file_request(), &env(&[]), from_text("[bus\n")));
    assert!(message.contains("inline.toml"), "{message}");
}

#[test]
fn bad_overrides_name_variable_and_key() {
    let message = error_text(load_with(
        &LoadRequest::default(),
        &env(&[("SEMBANG_BUS_PARTITIONS", "eight")]),
        real_files,
    ));
    assert!(
        message.contains("SEMBANG_BUS_PARTITIONS") && message.contains("bus.partitions"),
        "{message}"
    );
    let message = error_text(load_with(
        &LoadRequest::default(),
        &env(&[("SEMBANG_HTTP_LISTN", "x")]),
        real_files,
    ));
    assert!(message.contains("SEMBANG_HTTP_LISTN"), "{message}");
    let message = error_text(load_with(
        &LoadRequest::default(),
        &env(&[("SEMBANG_BUS_BACKEND", "carrier-pigeon")]),
        real_files,
    ));
    assert!(message.contains("bus.backend"), "{message}");
}

#[test]
fn secrets_in_files_are_refused() {
    let message = error_text(load_with(
        &file_request(),
        &env(&[]),
        from_text("[whatsapp]\napp_secret = \"hunter2\"\n"),
    ));
    assert!(message.contains("whatsapp.app_secret"), "{message}");
    assert!(message.contains("SEMBANG_WHATSAPP_APP_SECRET"), "{message}");
    assert!(!message.contains("hunter2"), "{message}");
}

#[test]
fn secrets_come_from_environment() {
    let key = "ab".repeat(32);
    let settings = load_with(
        &LoadRequest::default(),
        &env(&[
            ("SEMBANG_WHATSAPP_APP_SECRET", "s"),
            ("SEMBANG_IC_HASH_KEY", &key),
            ("SEMBANG_S3_SECRET_ACCESS_KEY", "s3-secret"),
            ("SEMBANG_MEDIA_STORE", "s3"),
            ("SEMBANG_MEDIA_S3_BUCKET", "receipts"),
        ]),
        real_files,
    )
    .unwrap();
    assert_eq!(
        settings.secrets.s3_secret_access_key.unwrap().expose(),
        "s3-secret"
    );
    assert_eq!(settings.config.media.s3_bucket, "receipts");
    assert_eq!(settings.secrets.whatsapp_app_secret.unwrap().expose(), "s");
    assert_eq!(settings.secrets.ic_hash_key.unwrap().expose(), key);
    assert_eq!(
        settings.overridden,
        ["media.s3_bucket", "media.store"],
        "secrets are not config keys"
    );
}

#[test]
fn unknown_profile_is_an_error() {
    let request = LoadRequest {
        config_file: None,
        profile: Some("staging".into()),
    };
    let err = load_with(&request, &env(&[]), real_files).unwrap_err();
    assert!(matches!(err, ConfigError::UnknownProfile { name, .. } if name == "staging"));
}

#[test]
fn missing_config_file_is_an_error() {
    let request = LoadRequest {
        config_file: Some(PathBuf::from("/nonexistent/sembang.toml")),
        profile: None,
    };
    let err = load_with(&request, &env(&[]), real_files).unwrap_err();
    assert!(err.to_string().contains("/nonexistent/sembang.toml"));
}

#[test]
fn an_admin_api_without_keys_stays_on_loopback() {
    let embedded_on = |listen: &str, keys: Option<&str>| {
        // The app secret keeps the webhook's own check out of the way.
        let mut vars = vec![
            ("SEMBANG_HTTP_LISTEN", listen),
            ("SEMBANG_WHATSAPP_APP_SECRET", "s3cret"),
        ];
        if let Some(keys) = keys {
            vars.push(("SEMBANG_ADMIN_API_KEYS", keys));
        }
        load_with(&LoadRequest::default(), &env(&vars), real_files)
    };
    // The embedded default opens it on loopback (v4 and v6).
    embedded_on("127.0.0.1:8080", None).unwrap();
    embedded_on("[::1]:8080", None).unwrap();
    // On every interface it would serve contacts to the network without a key.
    let message = error_text(embedded_on("0.0.0.0:8080", None));
    assert!(
        message.contains("admin.require_api_key") && message.contains("0.0.0.0:8080"),
        "{message}"
    );
    // With keys configured it is not open, wherever it listens.
    embedded_on("0.0.0.0:8080", Some("admin:k-123")).unwrap();
    // Any profile may listen anywhere when it requires a key.
    let settings = load_with(
        &LoadRequest::default(),
        &env(&[
            ("SEMBANG_HTTP_LISTEN", "0.0.0.0:8080"),
            ("SEMBANG_ADMIN_REQUIRE_API_KEY", "true"),
            ("SEMBANG_WHATSAPP_APP_SECRET", "s3cret"),
        ]),
        real_files,
    )
    .unwrap();
    assert!(settings.config.admin.require_api_key);
}

#[test]
fn a_webhook_without_an_app_secret_stays_on_loopback() {
    let load = |vars: &[(&str, &str)]| load_with(&LoadRequest::default(), &env(vars), real_files);
    let keys = ("SEMBANG_ADMIN_API_KEYS", "admin:k-123");
    // The embedded default takes unsigned posts on loopback only.
    load(&[]).unwrap();
    let message = error_text(load(&[("SEMBANG_HTTP_LISTEN", "0.0.0.0:8080"), keys]));
    assert!(
        message.contains("http.listen") && message.contains("SEMBANG_WHATSAPP_APP_SECRET"),
        "{message}"
    );
    // With the secret every post must be signed, so it may listen anywhere.
    load(&[
        ("SEMBANG_HTTP_LISTEN", "0.0.0.0:8080"),
        ("SEMBANG_WHATSAPP_APP_SECRET", "s3cret"),
        keys,
    ])
    .unwrap();
    // A process without the ingress role serves no webhook.
    load(&[
        ("SEMBANG_HTTP_LISTEN", "0.0.0.0:8080"),
        ("SEMBANG_ENGINE_ROLES", "engine"),
        keys,
    ])
    .unwrap();
}

#[test]
fn the_admin_surface_can_listen_apart() {
    let load = |vars: &[(&str, &str)]| load_with(&LoadRequest::default(), &env(vars), real_files);
    // An open admin API on a private listener that is not loopback is refused too.
    let message = error_text(load(&[("SEMBANG_HTTP_ADMIN_LISTEN", "0.0.0.0:9090")]));
    assert!(message.contains("0.0.0.0:9090"), "{message}");
    let settings = load(&[("SEMBANG_HTTP_ADMIN_LISTEN", "127.0.0.1:9090")]).unwrap();
    assert_eq!(settings.config.http.admin_listen(), "127.0.0.1:9090");
    let message = error_text(load(&[("SEMBANG_HTTP_ADMIN_LISTEN", "nowhere")]));
    assert!(message.contains("http.admin_listen"), "{message}");
    let message = error_text(load(&[("SEMBANG_HTTP_HEADER_TIMEOUT_MS", "0")]));
    assert!(message.contains("http.header_timeout_ms"), "{message}");
}
