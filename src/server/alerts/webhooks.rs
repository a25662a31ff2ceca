//! Webhooks: every alert change told to each `--notify-webhook` URL as one `POST` of JSON that
//! Slack and Discord incoming webhooks accept as is (`text`, and `content` for Discord's own
//! format), with the structured fields beside it. Off the watching path: each endpoint has a
//! queue and a task of its own, so a slow or dead one delays neither detection nor the
//! others. A failed delivery is tried again with backoff for up to an hour, in order; each
//! failure is logged and shown in the page. Only the URLs given are ever sent to.

use super::journal::{Journal, Message};
use crate::analysis::alerts::{link, sentence};
use crate::model::WebhookStatus;
use crate::server::local_time;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::mpsc;

/// One attempt may take this long.
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(10);
/// The first wait before trying again, doubled each time up to [`MAX_WAIT`]…
const FIRST_WAIT: Duration = Duration::from_secs(1);
const MAX_WAIT: Duration = Duration::from_secs(300);
/// …until this long after the change: then it is given up (and logged).
pub const GIVE_UP_SECONDS: f64 = 3600.0;

/// Every endpoint, with its queue.
#[derive(Clone, Default)]
pub struct Webhooks {
    endpoints: Vec<Endpoint>,
}

#[derive(Clone)]
struct Endpoint {
    /// A digest of the URL: how the journal names it without keeping the secret.
    id: String,
    queue: mpsc::UnboundedSender<(String, Message)>,
    status: Arc<Mutex<WebhookStatus>>,
}

impl Webhooks {
    /// Starts a task per URL, first handing each what the journal says it never got.
    /// A URL that is not `http://` or `https://` is refused, naming it.
    pub fn start(
        urls: &[String],
        public_url: Option<String>,
        journal: Arc<Mutex<Journal>>,
    ) -> Result<Self, String> {
        let client = reqwest::Client::builder()
            .timeout(ATTEMPT_TIMEOUT)
            // Only the URL given is ever sent to, not wherever it redirects.
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("hydra-dashboard/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| format!("cannot make an HTTP client for webhooks: {e}"))?;
        let mut endpoints = Vec::new();
        for url in urls.iter().map(|u| u.trim()).filter(|u| !u.is_empty()) {
            let parsed = reqwest::Url::parse(url)
                .map_err(|e| format!("--notify-webhook {}: not a URL ({e})", shown(url)))?;
            if !matches!(parsed.scheme(), "http" | "https") || parsed.host_str().is_none() {
                return Err(format!(
                    "--notify-webhook {}: only http:// and https:// URLs can be sent to",
                    shown(url)
                ));
            }
            let (queue, rx) = mpsc::unbounded_channel();
            let endpoint = Endpoint {
                id: crate::server::digest::text(url),
                queue,
                status: Arc::new(Mutex::new(WebhookStatus {
                    url: shown(url),
                    ..Default::default()
                })),
            };
            let now = local_time::now().0;
            let left = journal
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .undelivered(&endpoint.id);
            for (key, message) in left {
                if now - message.at < GIVE_UP_SECONDS {
                    endpoint.push(key, message);
                }
            }
            tokio::spawn(deliver(
                client.clone(),
                parsed,
                rx,
                endpoint.clone(),
                public_url.clone(),
                journal.clone(),
            ));
            endpoints.push(endpoint);
        }
        Ok(Self { endpoints })
    }

    pub fn is_empty(&self) -> bool {
        self.endpoints.is_empty()
    }

    /// Queues `message` for every endpoint; returns at once.
    pub fn send(&self, key: &str, message: &Message) {
        for e in &self.endpoints {
            e.push(key.to_string(), message.clone());
        }
    }

    pub fn status(&self) -> Vec<WebhookStatus> {
        self.endpoints
            .iter()
            .map(|e| e.status.lock().unwrap_or_else(|p| p.into_inner()).clone())
            .collect()
    }
}

impl Endpoint {
    fn push(&self, key: String, message: Message) {
        self.status
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .waiting += 1;
        // The task ends only with the server.
        let _ = self.queue.send((key, message));
    }

    fn update(&self, f: impl FnOnce(&mut WebhookStatus)) {
        f(&mut self.status.lock().unwrap_or_else(|p| p.into_inner()));
    }
}

/// One endpoint's task: its messages in order, each tried until it lands or is given up.
async fn deliver(
    client: reqwest::Client,
    url: reqwest::Url,
    mut queue: mpsc::UnboundedReceiver<(String, Message)>,
    endpoint: Endpoint,
    public_url: Option<String>,
    journal: Arc<Mutex<Journal>>,
) {
    while let Some((key, message)) = queue.recv().await {
        let body = body(&message, public_url.as_deref());
        let mut wait = FIRST_WAIT;
        loop {
            let tried = client
                .post(url.clone())
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .body(body.clone())
                .send()
                .await;
            // A 4xx other than 408 and 429 says the message itself is refused (a revoked
            // webhook, a malformed body): trying again would only hold up the ones after it.
            let mut refused = false;
            let error = match tried {
                Ok(r) if r.status().is_success() => None,
                Ok(r) => {
                    let status = r.status();
                    refused = status.is_client_error() && !matches!(status.as_u16(), 408 | 429);
                    Some(format!("answered {status}"))
                }
                Err(e) if e.is_timeout() => Some("no answer within 10 s".to_string()),
                Err(e) if e.is_connect() => Some("cannot connect".to_string()),
                // Never the URL: its path is the webhook's secret.
                Err(e) => Some(e.without_url().to_string()),
            };
            let Some(error) = error else {
                endpoint.update(|s| s.delivered += 1);
                journal
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .delivered(&key, &endpoint.id);
                break;
            };
            let left = GIVE_UP_SECONDS - (local_time::now().0 - message.at);
            let given_up = refused || left <= 0.0;
            endpoint.update(|s| {
                s.failures += 1;
                s.last_error = Some(error.clone());
                s.given_up += u64::from(given_up);
            });
            if given_up {
                tracing::warn!(
                    "webhook {}: gave up on {}: {error}",
                    endpoint
                        .status
                        .lock()
                        .map(|s| s.url.clone())
                        .unwrap_or_default(),
                    sentence(message.change, &message.alert)
                );
                break;
            }
            tracing::warn!(
                "webhook {}: {error}; trying again in {} s",
                endpoint
                    .status
                    .lock()
                    .map(|s| s.url.clone())
                    .unwrap_or_default(),
                wait.as_secs()
            );
            tokio::time::sleep(wait.min(Duration::from_secs_f64(left.max(0.0)))).await;
            wait = (wait * 2).min(MAX_WAIT);
        }
        endpoint.update(|s| s.waiting = s.waiting.saturating_sub(1));
    }
}

/// The JSON a webhook gets: what a chat app shows (`text`, `content`), and the fields a
/// program reads.
pub fn body(m: &Message, public_url: Option<&str>) -> Vec<u8> {
    let url = public_url.map(|base| format!("{}{}", base.trim_end_matches('/'), link(&m.alert)));
    let mut text = sentence(m.change, &m.alert);
    if let Some(u) = &url {
        text.push_str(&format!(" <{u}>"));
    }
    let a = &m.alert;
    let json = serde_json::json!({
        "text": text,
        "content": text,
        "kind": a.kind,
        "run_id": a.run_id,
        "model_id": a.model_id,
        "step": a.step,
        "value": a.value,
        "state": m.change,
        "resolved_step": a.resolved_step.filter(|_| m.change == crate::model::AlertChange::Resolved),
        "detail": a.detail,
        "url": url,
    });
    serde_json::to_vec(&json).unwrap_or_default()
}

/// A URL as logs and the page show it: scheme and host only (the path of a Slack or Discord
/// webhook is its secret).
fn shown(url: &str) -> String {
    match reqwest::Url::parse(url) {
        Ok(u) => format!(
            "{}://{}{}/…",
            u.scheme(),
            u.host_str().unwrap_or(""),
            u.port().map(|p| format!(":{p}")).unwrap_or_default()
        ),
        Err(_) => "(not a URL)".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Alert, AlertChange, AlertKind};

    #[test]
    fn the_body_is_what_slack_and_discord_show_plus_the_fields() {
        let m = Message {
            change: AlertChange::Raised,
            alert: Alert {
                run_id: "500m/a b".into(),
                model_id: "500m".into(),
                kind: AlertKind::LossSpike,
                step: 12_300,
                value: Some(4.81),
                time: None,
                detail: "loss 4.81, above 3.2".into(),
                resolved_step: None,
                resolved_time: None,
                resolved_detail: None,
            },
            at: 0.0,
        };
        let v: serde_json::Value =
            serde_json::from_slice(&body(&m, Some("https://dash.example.com/"))).unwrap();
        let text = v["text"].as_str().unwrap();
        assert!(
            text.contains("500m/a b: loss spike at step 12,300 — loss 4.81"),
            "{text}"
        );
        assert!(
            text.ends_with("<https://dash.example.com/run/500m%2Fa%20b?start=11800&end=12800>"),
            "{text}"
        );
        assert_eq!(v["content"], v["text"]);
        assert_eq!(v["kind"], "loss_spike");
        assert_eq!(v["state"], "raised");
        assert_eq!(v["step"], 12_300);
        assert_eq!(v["value"], 4.81);
        let bare: serde_json::Value = serde_json::from_slice(&body(&m, None)).unwrap();
        assert_eq!(bare["url"], serde_json::Value::Null);
        assert!(!bare["text"].as_str().unwrap().contains('<'));
    }

    #[test]
    fn a_webhook_url_is_shown_without_its_secret_path() {
        assert_eq!(
            shown("https://hooks.slack.com/services/T000/B000/XXXX"),
            "https://hooks.slack.com/…"
        );
        assert_eq!(
            shown("http://127.0.0.1:9000/hook"),
            "http://127.0.0.1:9000/…"
        );
    }
}
