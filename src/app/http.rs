//! The HTTP surface of a process as a supervised role: one listener for the webhook, the
//! admin API and `/metrics`, bound before the roles start so its address is known.

use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;

use crate::api::campaigns::CampaignsState;
use crate::api::contacts::ProfileEdits;
use crate::api::{self, AdminState, ApiKeys, SegmentsState, UploadState};
use crate::config::{ProviderKind, Role};
use crate::engine::supervisor::RoleStart;
use crate::engine::EngineError;
use crate::ingress::click::ClickState;
use crate::ingress::http::WebhookState;
use crate::topics;
use crate::topics::inbound::Business;

use super::backends::media_limits;
use super::error::{failed, StartError};
use super::roles::{Assembly, SegmentScope};

/// Binds `http.listen` (port 0 picks a free one).
pub(super) fn bind(listen: &str) -> Result<(TcpListener, SocketAddr), StartError> {
    let listener = TcpListener::bind(listen)
        .and_then(|l| l.set_nonblocking(true).map(|()| l))
        .map_err(|e| StartError::Settings(format!("http.listen {listen}: {e}")))?;
    let addr = listener.local_addr().map_err(failed("the HTTP listener"))?;
    Ok((listener, addr))
}

impl Assembly<'_> {
    /// The webhook (when this process runs the ingress role), the admin API and /metrics.
    pub fn http_role(&self, listener: TcpListener) -> Result<RoleStart, StartError> {
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
        let webhook = ingress.then(|| {
            Arc::new(WebhookState {
                producer: self.producer.clone(),
                inbound_topic: names.name(topics::INBOUND),
                dead_letter_topic: names.name(topics::DEAD_LETTER),
                app_secret: secrets.whatsapp_app_secret.clone(),
                verify_token: secrets.whatsapp_verify_token.clone(),
                wabot_token: secrets.wabot_access_token.clone(),
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
                }),
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
        let router = api::router(webhook, clicks, admin, config.http.max_body_bytes as usize);
        let listener = Arc::new(listener);
        Ok(Arc::new(move |mut shutdown, _cell| {
            let listener = listener.try_clone();
            let router = router.clone();
            Box::pin(async move {
                let listener = listener
                    .and_then(tokio::net::TcpListener::from_std)
                    .map_err(|e| EngineError::actor("http", format!("listener: {e}")))?;
                axum::serve(listener, router)
                    .with_graceful_shutdown(async move {
                        let _ = shutdown.changed().await;
                    })
                    .await
                    .map_err(|e| EngineError::actor("http", e))
            })
        }))
    }
}
