//! Alert rules, alerts, webhooks and their deliveries: a part of the store of its own.
//!
//! Implementations must apply an evaluation's changes ([`AlertStore::apply_alerts`]) in one
//! transaction with the deliveries they owe, so an alert never fires without its webhooks
//! being told, and a crash never tells them twice about one change.

use async_trait::async_trait;
use serde::Serialize;

use super::{StoreError, Timestamp};
use crate::alerts::rules::{RecentReport, RuleSpec};

/// A stored rule.
#[derive(Clone, Debug, Serialize)]
pub struct AlertRule {
    pub id: i64,
    pub name: String,
    pub spec: RuleSpec,
    /// A group path; `None` is the whole fleet.
    pub scope: Option<String>,
    pub created_at: Timestamp,
    pub created_by: String,
}

/// An alert, open or resolved.
#[derive(Clone, Debug, Serialize)]
pub struct Alert {
    pub id: i64,
    pub rule_id: i64,
    pub rule: String,
    pub device_id: String,
    pub device_name: String,
    pub subject: String,
    pub message: String,
    pub fired_at: Timestamp,
    pub resolved_at: Option<Timestamp>,
}

/// An alert to open.
#[derive(Clone, Debug)]
pub struct NewAlert {
    pub rule_id: i64,
    pub device_id: String,
    pub subject: String,
    pub message: String,
}

/// A webhook target. Its secret stays sealed in the store.
#[derive(Clone, Debug, Serialize)]
pub struct Webhook {
    pub id: i64,
    pub url: String,
    #[serde(skip)]
    pub sealed_secret: Option<String>,
    /// Whether deliveries are signed.
    pub signed: bool,
    pub created_at: Timestamp,
    pub created_by: String,
}

/// A delivery owed to a webhook.
#[derive(Clone, Debug)]
pub struct Delivery {
    pub id: i64,
    pub webhook: Webhook,
    pub body: String,
    pub attempts: u32,
}

/// How deliveries stand, for the alerts page.
#[derive(Clone, Debug, Default, Serialize)]
pub struct DeliveryCounts {
    pub pending: u64,
    pub delivered: u64,
    pub failed: u64,
    /// The last failure's message, if any delivery is pending after a failure or failed.
    pub last_error: Option<String>,
}

/// Alerts of the fleet and where they are sent.
#[async_trait]
pub trait AlertStore: Send + Sync + 'static {
    /// Adds a rule; a name in use is a `Conflict`.
    async fn insert_rule(
        &self,
        name: &str,
        spec: &RuleSpec,
        scope: Option<&str>,
        actor: &str,
        now: Timestamp,
    ) -> Result<AlertRule, StoreError>;
    async fn rules(&self) -> Result<Vec<AlertRule>, StoreError>;
    /// Deletes a rule and its alerts; false when there was none.
    async fn delete_rule(&self, id: i64) -> Result<bool, StoreError>;

    /// Alerts, newest first: the open ones, or all of them (at most `limit`).
    async fn alerts(&self, open_only: bool, limit: u32) -> Result<Vec<Alert>, StoreError>;

    /// Opens `opened`, resolves the alerts `resolved` at `now`, and queues, in the same
    /// transaction, one delivery per webhook for each change: `body` turns an alert and
    /// whether it fired into the JSON sent.
    async fn apply_alerts(
        &self,
        opened: Vec<NewAlert>,
        resolved: Vec<i64>,
        now: Timestamp,
        body: for<'x> fn(&'x Alert, bool) -> String,
    ) -> Result<(), StoreError>;

    /// Reports at `min_level` or above since `since`, oldest first (at most `limit`).
    async fn reports_since(
        &self,
        since: Timestamp,
        min_level: apiary_proto::device_api::Level,
        limit: u32,
    ) -> Result<Vec<RecentReport>, StoreError>;

    /// Raw metric rows of every device since `since`: device, time, names, values.
    async fn samples_since(
        &self,
        since: Timestamp,
    ) -> Result<Vec<(String, Timestamp, std::sync::Arc<Vec<String>>, Vec<u8>)>, StoreError>;

    /// Adds a webhook; a URL in use is a `Conflict`.
    async fn insert_webhook(
        &self,
        url: &str,
        sealed_secret: Option<&str>,
        actor: &str,
        now: Timestamp,
    ) -> Result<Webhook, StoreError>;
    async fn webhooks(&self) -> Result<Vec<Webhook>, StoreError>;
    async fn delete_webhook(&self, id: i64) -> Result<bool, StoreError>;

    /// Deliveries due at `now`, oldest first.
    async fn due_deliveries(&self, now: Timestamp, limit: u32)
    -> Result<Vec<Delivery>, StoreError>;
    /// Records an attempt: delivered, to retry at `retry_at`, or given up (`retry_at` None
    /// with an error).
    async fn record_delivery(
        &self,
        id: i64,
        now: Timestamp,
        error: Option<String>,
        retry_at: Option<Timestamp>,
    ) -> Result<(), StoreError>;
    async fn delivery_counts(&self) -> Result<DeliveryCounts, StoreError>;
}
