//! The HTTP surfaces of a process as a supervised role: the public listener (webhooks,
//! redirects) and, when `http.admin_listen` is set, the private one (admin API, /metrics),
//! bound before the roles start so their addresses are known.

use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;
use std::time::Duration;

use crate::api::audit::AuditLog;
use crate::api::campaigns::CampaignsState;
use crate::api::contacts::ProfileEdits;
use crate::api::dead_letters::DeadLetters;
use crate::api::ocr::OcrState;
use crate::api::{self, AdminState, ApiKeys, SegmentsState, UploadState};
use crate::config::{HttpConfig, ProviderKind, Role};
use crate::engine::health::RoleBoard;
use crate::engine::supervisor::RoleStart;
use crate::engine::EngineError;
use crate::ingress::click::ClickState;
use crate::ingress::http::WebhookState;
use crate::topics;
use crate::topics::inbound::Business;

use super::backends::media_limits;
use super::error::{failed, StartError};
use super::roles::{Assembly, SegmentScope};
use super::serve::{serve, ServeLimits};

/// The bound listeners: the public one, and the private one when it is apart.
pub(super) struct Listeners {
    public: TcpListener,
    private: Option<TcpListener>,
}

impl Listeners {
    /// Binds `http.listen` and `http.admin_listen` (port 0 picks a free one).
    pub(super) fn bind(http: &HttpConfig) -> Result<Self, StartError> {
        let bind = |key: &str, listen: &str| {
            TcpListener::bind(listen)
                .and_then(|l| l.set_nonblocking(true).map(|()| l))
                .map_err(|e| StartError::Settings(format!("{key} {listen}: {e}")))
        };
        Ok(Listeners {
            public: bind("http.listen", &http.listen)?,
            private: (!http.admin_listen.is_empty())
                .then(|| bind("http.admin_listen", &http.admin_listen))
                .transpose()?,
        })
    }

    /// The public address and the private one (the same when they share a listener).
    pub(super) fn addrs(&self) -> Result<(SocketAddr, SocketAddr), StartError> {
        let public = self
            .public
            .local_addr()
            .map_err(failed("the HTTP listener"))?;
        let private = match &self.private {
            Some(listener) => listener
                .local_addr()
                .map_err(failed("the admin HTTP listener"))?,
            None => public,
        };
        Ok((public, private))
    }
}

impl Assembly<'_> {
    /// The webhook (when this process runs the ingress role), the admin API and /metrics.
    pub fn http_role(
        &self,
        listeners: Listeners,
        board: &RoleBoard,
    ) -> Result<RoleStart, StartError> {
        let (config, secrets, names) = (self.config, self.secrets, &self.names);
        let ingress = config.engine.roles.contains(&Role::Ingress);
        if ingress
            && secrets.whatsapp_app_secret.is_none()
            && config.whatsapp.provider == ProviderKind::CloudApi
        {
            return Err(StartError::Settings(
                "the webhook of the Cloud API provider needs SEMBANG_WHATSAPP_APP_SECRET to verify signatures".into(),
            ));
        }
        if ingress {
            crate::ingress::http::register_metrics();
        }
        let webhook = ingress.then(|| {
            Arc::new(WebhookState {
                producer: self.producer.clone(),
                inbound_topic: names.name(topics::INBOUND),
                dead_letter_topic: names.name(topics::DEAD_LETTER),
                app_secret: secrets.whatsapp_app_secret.clone(),
                verify_token: secrets.whatsapp_verify_token.clone(),
                wabot_token: secrets.wabot_access_token.clone(),
                store_timeout: Duration::from_millis(config.http.webhook_store_timeout_ms),
            })
        });
        let keys = ApiKeys::parse(&secrets.admin_api_keys)
            .map_err(|e| StartError::Settings(e.to_string()))?;
        let admin = Arc::new(AdminState {
            store: self.backends.store.clone(),
            sandbox: self.backends.sandbox.clone(),
            keys,
            require_key: config.admin.require_api_key,
            uploads: Some(UploadState {
                producer: self.producer.clone(),
                objects: self.objects.clone(),
                limits: media_limits(config),
                ocr_jobs_topic: names.name(topics::OCR_JOBS),
                phone_number_id: config.whatsapp.phone_number_id.clone(),
            }),
            segments: self
                .segments
                .as_ref()
                .filter(|(_, scope)| *scope == SegmentScope::AllPartitions)
                .map(|(follower, _)| SegmentsState {
                    index: follower.index().clone(),
                    producer: self.producer.clone(),
                    commands_topic: names.name(topics::COMMANDS),
                    command_partitions: config.bus.partitions,
                }),
            edits: Some(ProfileEdits::new(
                self.producer.clone(),
                names.name(topics::INBOUND),
                &config.whatsapp.phone_number_id,
            )),
            campaigns: self
                .segments
                .as_ref()
                .filter(|(_, scope)| *scope == SegmentScope::AllPartitions)
                .map(|_| CampaignsState {
                    producer: self.producer.clone(),
                    outbound_topic: names.name(topics::OUTBOUND),
                    number: super::roles::sending_number(config),
                    frequency_cap: config.campaigns.frequency_cap(),
                    messaging_limit_24h: config.campaigns.messaging_limit_24h,
                    messages_per_second: config.whatsapp.messages_per_second,
                    cap_retry: config.campaigns.cap_retry(),
                }),
            ocr: Some(OcrState::new(
                config.ocr.languages.clone(),
                media_limits(config),
                Duration::from_millis(config.ocr.deadline_ms),
            )),
            dead_letters: Some(DeadLetters {
                bus: self.backends.bus.clone(),
                topic: names.name(topics::DEAD_LETTER),
                replayable_topics: topics::ALL
                    .iter()
                    .filter(|t| t.name != topics::DEAD_LETTER.name)
                    .map(|&t| names.name(t))
                    .collect(),
            }),
            audit: Some(Arc::new(AuditLog {
                producer: self.producer.clone(),
                events_topic: names.name(topics::EVENTS),
            })),
            analytics: Some(self.backends.analytics.clone()),
        });
        let clicks = match (ingress, super::roles::link_sealer(config, secrets)) {
            (true, Some(sealer)) => Some(ClickState::start(
                Arc::new(sealer),
                self.backends.store.clone(),
                self.producer.clone(),
                names.name(topics::INBOUND),
                names.name(topics::DEAD_LETTER),
                Business {
                    waba_id: String::new(),
                    phone_number_id: config.whatsapp.phone_number_id.clone(),
                    display_phone_number: config.campaigns.business_number.clone(),
                },
            )),
            _ => None,
        };
        let board = board.clone();
        let readiness: api::Readiness = Arc::new(move || {
            board
                .snapshot()
                .into_iter()
                .map(|r| api::RoleReadiness {
                    role: r.role,
                    ready: r.ready,
                    restarts_in_a_row: r.failures_in_a_row,
                })
                .collect()
        });
        let max_body = config.http.max_body_bytes as usize;
        let served: Vec<(Arc<TcpListener>, axum::Router)> = match listeners.private {
            None => vec![(
                Arc::new(listeners.public),
                api::router(webhook, clicks, admin, readiness, max_body),
            )],
            Some(private) => {
                let surfaces = api::surfaces(webhook, clicks, admin, readiness, max_body);
                vec![
                    (Arc::new(listeners.public), surfaces.public),
                    (Arc::new(private), surfaces.private),
                ]
            }
        };
        let limits = ServeLimits::from_config(&config.http);
        Ok(Arc::new(move |shutdown, _cell| {
            let served: Result<Vec<_>, _> = served
                .iter()
                .map(|(listener, router)| {
                    listener
                        .try_clone()
                        .and_then(tokio::net::TcpListener::from_std)
                        .map(|l| (l, router.clone()))
                })
                .collect();
            Box::pin(async move {
                let served =
                    served.map_err(|e| EngineError::actor("http", format!("listener: {e}")))?;
                let serving = served
                    .into_iter()
                    .map(|(listener, router)| serve(listener, router, limits, shutdown.clone()));
                futures::future::join_all(serving).await;
                Ok(())
            })
        }))
    }
}
