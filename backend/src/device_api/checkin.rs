//! The check-in: reports in, acks and (only if it changed) the bundle out.

use std::net::IpAddr;

use axum::Json;
use axum::body::Body;
use axum::extract::{Extension, State};
use axum::http::HeaderMap;

use apiary_proto::device_api::{
    CheckinRequest, CheckinResponse, Level, MAX_CHECKIN_BODY_BYTES, NetInterface,
    REFUSED_BUNDLE_POLICY, Report,
};
use apiary_proto::signed::Envelope;

use super::monitoring::Monitoring;
use crate::error::ApiError;
use crate::state::{Shared, now};
use crate::store::{CheckinOutcome, CheckinRecord};
use crate::tls_server::ConnInfo;

const MAX_MESSAGE: usize = 8 * 1024;
const MAX_OUTPUT: usize = 16 * 1024;

/// `POST /v1/checkin` (mTLS). The certificate is checked before a byte of the body is read.
pub async fn checkin(
    State(state): State<Shared>,
    Extension(conn): Extension<ConnInfo>,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<CheckinResponse>, ApiError> {
    let device = super::authenticated_device(&state, &conn).await?;
    let mut request: CheckinRequest =
        super::body::read_json(&headers, body, MAX_CHECKIN_BODY_BYTES).await?;
    request.validate().map_err(ApiError::bad_request)?;
    // Oversized reports are cut, not refused: a refused report would block the agent's queue.
    for r in &mut request.reports {
        truncate(&mut r.message, MAX_MESSAGE);
        if let Some(o) = &mut r.output {
            truncate(o, MAX_OUTPUT);
        }
    }
    let now = now();
    let remote_ip = conn.remote.ip();
    let repeat = request.reports.is_empty()
        && request.inventory.is_empty()
        && request.inventory_hashes.is_none()
        && request.metrics.is_none()
        && request.network.is_none()
        && request.agent_version.is_none()
        && request.time.is_none()
        && device
            .state
            .repeats_last(request.bundle_hash.as_deref(), remote_ip);
    let monitoring = if repeat {
        // Nothing to record but the time: no database on this path.
        state.store.touch_checkin(&device.id, now);
        Monitoring::default()
    } else {
        let monitoring = super::monitoring::record(&state, &device.id, &mut request, now).await?;
        Monitoring {
            ack_seq: record(&state, &device.id, &mut request, remote_ip, now).await?,
            ..monitoring
        }
    };
    let bundle = match &device.state.current_bundle {
        Some(hash) if request.bundle_hash.as_deref() != Some(hash.as_str()) => {
            current_envelope(&state, &device.id, request.bundle_hash.as_deref()).await?
        }
        _ => None,
    };
    // Answered only to a device that sent its own: the agent's floor for its clock.
    let time = request.time.map(|_| now.max(0) as u64);
    // Asked on every check-in until the device has its new certificate.
    let renew = conn
        .peer
        .as_ref()
        .is_some_and(|p| state.authority.renewal_due(p, now));
    // A device that holds another set of CAs than the backend trusts gets the set.
    let ca_pem = request
        .ca
        .as_deref()
        .filter(|held| *held != state.authority.trust_hash)
        .map(|_| state.authority.trust_pem.clone());
    Ok(Json(CheckinResponse {
        bundle,
        ack_seq: monitoring.ack_seq,
        time,
        renew,
        ca_pem,
        want_inventory: monitoring.want_inventory,
        metrics_ack: monitoring.metrics_ack,
        want_metric_names: monitoring.want_metric_names,
    }))
}

/// Stores the check-in's reports and what it says; returns the acknowledged report seq.
async fn record(
    state: &Shared,
    device_id: &str,
    request: &mut CheckinRequest,
    remote_ip: IpAddr,
    now: i64,
) -> Result<Option<u64>, ApiError> {
    let outcome = rollout_outcome(&request.reports);
    let ack_seq = if request.reports.is_empty() {
        None
    } else {
        let reports = std::mem::take(&mut request.reports);
        state
            .store
            .insert_reports(device_id, &request.queue_id, reports, now)
            .await?
    };
    // Bad network facts are dropped, not refused: refusing would hold back the reports.
    let network = request.network.take().filter(|list| {
        NetInterface::validate_list(list)
            .map_err(|e| tracing::warn!("device {device_id}: network facts dropped: {e}"))
            .is_ok()
    });
    state
        .store
        .record_checkin(
            device_id,
            now,
            CheckinRecord {
                agent_version: request.agent_version.take(),
                applied_hash: request.bundle_hash.clone(),
                remote_ip: remote_ip.to_string(),
                network,
                clock_skew: request.time.map(|t| skew(t, now)),
                outcome,
            },
        )
        .await?;
    Ok(ack_seq)
}

/// The device's clock minus the backend's, in seconds (clamped: a device may send anything).
fn skew(device_time: u64, now: i64) -> i64 {
    (device_time.min(i64::MAX as u64) as i64).saturating_sub(now)
}

/// The device's current bundle, unless it is the one the device has.
async fn current_envelope(
    state: &Shared,
    device_id: &str,
    applied: Option<&str>,
) -> Result<Option<Envelope>, ApiError> {
    let Some(b) = state.store.current_bundle(device_id).await? else {
        return Ok(None);
    };
    if applied == Some(b.hash.as_str()) {
        return Ok(None);
    }
    let envelope = state
        .secrets
        .load_envelope(&b.envelope)
        .map_err(|e| ApiError::internal(format!("stored bundle of {device_id}: {e}")))?;
    serde_json::from_str::<Envelope>(&envelope)
        .map(Some)
        .map_err(|e| ApiError::internal(format!("stored bundle of {device_id} is corrupt: {e}")))
}

/// What the reports say about bundles: errors per bundle serial, and refused bundles (the
/// agent names a refused bundle by its hash, in the report's item).
fn rollout_outcome(reports: &[Report]) -> CheckinOutcome {
    let mut outcome = CheckinOutcome::default();
    // A threshold crossed is news about the device, not a failure of the bundle.
    let monitor = <apiary_proto::policy::metrics_monitor::MetricsMonitor as apiary_proto::policy::InBundle>::NAME;
    for r in reports
        .iter()
        .filter(|r| r.level >= Level::Error && r.policy != monitor)
    {
        match (r.policy.as_str(), &r.item, r.bundle_serial) {
            (REFUSED_BUNDLE_POLICY, Some(hash), _) => outcome.refused.push(hash.clone()),
            (policy, _, Some(serial)) => outcome.errors.push((serial, policy.to_string())),
            _ => {}
        }
    }
    outcome
}

fn truncate(text: &mut String, max: usize) {
    if text.len() > max {
        let mut cut = max;
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
        text.truncate(cut);
        text.push_str(" [truncated]");
    }
}
