//! A rendered campaign message as the provider sends it.

use crate::domain::campaign::{MediaRef, RenderedMessage};
use crate::topics::outbound::OutboundContent;

/// The provider's message for `rendered`; `track` rewrites the links of its text (the
/// identity for a test send).
pub fn outbound_content(
    rendered: RenderedMessage,
    track: &dyn Fn(String) -> String,
) -> OutboundContent {
    let media = |m: MediaRef| match m {
        MediaRef::Link(link) => (Some(link), None),
        MediaRef::Id(id) => (None, Some(id)),
    };
    match rendered {
        RenderedMessage::Text(body) => OutboundContent::Text {
            preview_url: body.contains("https://") || body.contains("http://"),
            body: track(body),
        },
        RenderedMessage::Image { media: m, caption } => {
            let (link, media_id) = media(m);
            OutboundContent::Image {
                link,
                media_id,
                caption: caption.map(track),
            }
        }
        RenderedMessage::Video { media: m, caption } => {
            let (link, media_id) = media(m);
            OutboundContent::Video {
                link,
                media_id,
                caption: caption.map(track),
            }
        }
        RenderedMessage::Template {
            name,
            language,
            body_parameters,
        } => OutboundContent::Template {
            name,
            language,
            components: if body_parameters.is_empty() {
                serde_json::Value::Null
            } else {
                serde_json::json!([{
                    "type": "body",
                    "parameters": body_parameters
                        .into_iter()
                        .map(|text| serde_json::json!({"type": "text", "text": text}))
                        .collect::<Vec<_>>(),
                }])
            },
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_carry_their_parameters_and_texts_their_tracked_links() {
        let template = outbound_content(
            RenderedMessage::Template {
                name: "raya_2026".into(),
                language: "ms".into(),
                body_parameters: vec!["Siti".into(), "Gold".into()],
            },
            &|t| t,
        );
        assert_eq!(
            serde_json::to_value(&template).unwrap()["components"][0]["parameters"][1],
            serde_json::json!({"type": "text", "text": "Gold"})
        );
        let text = outbound_content(RenderedMessage::Text("see https://a.my".into()), &|t| {
            t.replace("https://a.my", "https://t/r/x")
        });
        assert_eq!(
            text,
            OutboundContent::Text {
                body: "see https://t/r/x".into(),
                preview_url: true
            }
        );
        let image = outbound_content(
            RenderedMessage::Image {
                media: MediaRef::Id("123".into()),
                caption: None,
            },
            &|t| t,
        );
        assert!(image.validate().is_ok());
    }
}
