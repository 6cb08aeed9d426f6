//! Webhook deliveries: the outbox [`crate::store::alerts::AlertStore::apply_alerts`] fills,
//! sent as HTTP POSTs with a JSON body, signed when the webhook has a secret, and retried
//! with backoff until the receiver answers 2xx or the attempts run out.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use ring::hmac;

use crate::state::{Shared, now};
use crate::store::Timestamp;
use crate::store::alerts::Delivery;

/// Attempts before a delivery is given up: about four hours of backoff.
pub const MAX_ATTEMPTS: u32 = 12;
/// Seconds a receiver has to answer.
const TIMEOUT: Duration = Duration::from_secs(10);
/// Deliveries sent per pass.
const BATCH: u32 = 20;

/// Seconds before the next attempt after `attempts` failed ones: 10 s, doubling, at most an
/// hour.
pub fn backoff(attempts: u32) -> i64 {
    (10i64 << attempts.saturating_sub(1).min(9)).min(3600)
}

/// `X-Apiary-Signature`'s value: HMAC-SHA256 of the body under the webhook's secret.
pub fn signature(secret: &str, body: &str) -> String {
    let key = hmac::Key::new(hmac::HMAC_SHA256, secret.as_bytes());
    format!(
        "sha256={}",
        apiary_proto::hex::encode(hmac::sign(&key, body.as_bytes()).as_ref())
    )
}

/// Checks a webhook URL an operator gives.
pub fn validate_url(url: &str) -> Result<(), String> {
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))
        .ok_or_else(|| format!("webhook URL {url:?} must start with http:// or https://"))?;
    let host = rest.split(['/', '?', '#']).next().unwrap_or("");
    if host.is_empty()
        || url.len() > 2048
        || url.chars().any(|c| c.is_whitespace() || c.is_control())
    {
        return Err(format!("webhook URL {url:?} is not a URL with a host"));
    }
    Ok(())
}

fn agent() -> &'static ureq::Agent {
    static AGENT: OnceLock<ureq::Agent> = OnceLock::new();
    AGENT.get_or_init(|| {
        let pem = apiary_proto::tls_client::system_roots().unwrap_or_default();
        let roots = apiary_proto::tls_client::pem_certs(&pem).unwrap_or_default();
        let tls = apiary_proto::tls_client::config(
            &roots,
            None,
            apiary_proto::tls_client::Suites::Default,
        );
        ureq::Agent::config_builder()
            .tls_config(tls)
            .http_status_as_error(false)
            .timeout_global(Some(TIMEOUT))
            .user_agent(format!("apiary-backend/{}", apiary_proto::VERSION))
            .build()
            .new_agent()
    })
}

/// POSTs one delivery; an error says what the receiver did.
fn post(delivery: &Delivery, secret: Option<&str>) -> Result<(), String> {
    let mut request = agent()
        .post(&delivery.webhook.url)
        .header("content-type", "application/json")
        .header("x-apiary-delivery", delivery.id.to_string());
    if let Some(secret) = secret {
        request = request.header("x-apiary-signature", signature(secret, &delivery.body));
    }
    match request.send(delivery.body.as_bytes()) {
        Ok(r) if r.status().is_success() => Ok(()),
        Ok(r) => Err(format!("{} answered {}", delivery.webhook.url, r.status())),
        Err(e) => Err(format!("{}: {e}", delivery.webhook.url)),
    }
}

/// Sends what is due, once; returns how many went through.
pub async fn deliver_due(state: &Shared) -> usize {
    let due = match state.store.due_deliveries(now(), BATCH).await {
        Ok(due) => due,
        Err(e) => {
            tracing::warn!("reading webhook deliveries: {e}");
            return 0;
        }
    };
    let mut delivered = 0;
    for d in due {
        let secret = match &d.webhook.sealed_secret {
            Some(sealed) => match state.secrets.open("webhook", sealed) {
                Ok(s) => Some(s),
                Err(e) => {
                    record(
                        state,
                        &d,
                        Some(format!("the webhook's secret cannot be opened: {e}")),
                        None,
                    )
                    .await;
                    continue;
                }
            },
            None => None,
        };
        let delivery = Arc::new(d);
        let sending = delivery.clone();
        let sent = tokio::task::spawn_blocking(move || post(&sending, secret.as_deref()))
            .await
            .unwrap_or_else(|e| Err(format!("the delivery task failed: {e}")));
        let attempts = delivery.attempts + 1;
        match sent {
            Ok(()) => {
                delivered += 1;
                record(state, &delivery, None, None).await;
            }
            Err(e) if attempts >= MAX_ATTEMPTS => {
                tracing::warn!(
                    "webhook delivery {} given up after {attempts} attempts: {e}",
                    delivery.id
                );
                record(state, &delivery, Some(e), None).await;
            }
            Err(e) => {
                tracing::info!("webhook delivery {} failed, retrying: {e}", delivery.id);
                let at: Timestamp = now() + backoff(attempts);
                record(state, &delivery, Some(e), Some(at)).await;
            }
        }
    }
    delivered
}

async fn record(state: &Shared, d: &Delivery, error: Option<String>, retry_at: Option<Timestamp>) {
    if let Err(e) = state
        .store
        .record_delivery(d.id, now(), error, retry_at)
        .await
    {
        tracing::warn!("recording webhook delivery {}: {e}", d.id);
    }
}

/// Sends due deliveries every two seconds, for as long as the server runs.
pub async fn deliver_forever(state: Shared) {
    let mut tick = tokio::time::interval(Duration::from_secs(2));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        deliver_due(&state).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_an_hour() {
        let waits: Vec<i64> = (1..=MAX_ATTEMPTS).map(backoff).collect();
        assert_eq!(&waits[..4], [10, 20, 40, 80]);
        assert_eq!(*waits.last().expect("some"), 3600);
        let total: i64 = waits.iter().sum();
        assert!((3 * 3600..6 * 3600).contains(&total), "{total}");
    }

    #[test]
    fn signatures_are_hmac_sha256_hex() {
        // RFC 4231 test case 2.
        assert_eq!(
            signature("Jefe", "what do ya want for nothing?"),
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn urls_need_a_scheme_and_a_host() {
        assert!(validate_url("https://hooks.example.com/apiary").is_ok());
        assert!(validate_url("http://127.0.0.1:9000").is_ok());
        assert!(validate_url("ftp://x").is_err());
        assert!(validate_url("https:///path").is_err());
        assert!(validate_url("https://a b").is_err());
    }
}
