//! The monitoring part of a check-in: inventory kinds and metric samples stored, and what
//! the answer says back (kinds to send again, samples acknowledged, names wanted).
//!
//! Bad content is dropped with a warning, never refused: a refused check-in would hold
//! back the device's reports, and the same content would come again every cycle.

use apiary_proto::device_api::CheckinRequest;
use apiary_proto::inventory::Kind;
use apiary_proto::metrics::MetricsUpload;

use crate::error::ApiError;
use crate::state::Shared;
use crate::store::monitoring::{NewSamples, SamplesStored};

/// What the answer carries of monitoring (and the reports' ack, set by the caller).
#[derive(Debug, Default)]
pub struct Monitoring {
    pub ack_seq: Option<u64>,
    pub want_inventory: Vec<Kind>,
    pub metrics_ack: Option<u64>,
    pub want_metric_names: bool,
}

/// Stores the check-in's inventory and samples.
pub async fn record(
    state: &Shared,
    device_id: &str,
    request: &mut CheckinRequest,
    now: i64,
) -> Result<Monitoring, ApiError> {
    let mut out = Monitoring::default();
    let kinds: Vec<_> = std::mem::take(&mut request.inventory)
        .into_iter()
        .filter(|u| {
            let checked = if u.hash.len() == 64 && u.hash.bytes().all(|c| c.is_ascii_hexdigit()) {
                u.data.validate()
            } else {
                Err("its hash is not SHA-256 hex".into())
            };
            checked
                .map_err(|e| tracing::warn!("device {device_id}: inventory dropped: {e}"))
                .is_ok()
        })
        .map(|u| (u.hash, u.data))
        .collect();
    if !kinds.is_empty() {
        state.store.put_inventory(device_id, kinds, now).await?;
    }
    if let Some(theirs) = request.inventory_hashes.take() {
        let ours = state.store.inventory_hashes(device_id).await?;
        out.want_inventory = theirs
            .into_iter()
            .filter(|(kind, hash)| ours.get(kind) != Some(hash))
            .map(|(kind, _)| kind)
            .collect();
    }
    if let Some(upload) = request.metrics.take() {
        (out.metrics_ack, out.want_metric_names) = samples(state, device_id, upload).await?;
    }
    Ok(out)
}

/// Stores samples; returns the seq acknowledged and whether the names are wanted.
async fn samples(
    state: &Shared,
    device_id: &str,
    upload: MetricsUpload,
) -> Result<(Option<u64>, bool), ApiError> {
    let last = upload.seq + upload.samples.len().saturating_sub(1) as u64;
    let checked = match &upload.names {
        Some(names) => upload.validate(names),
        None if upload.samples.len() > apiary_proto::metrics::MAX_SAMPLES_PER_CHECKIN => {
            Err("too many samples".into())
        }
        None => Ok(()),
    };
    if let Err(e) = checked {
        // Acknowledged all the same, so the device's queue moves on.
        tracing::warn!("device {device_id}: metric samples dropped: {e}");
        return Ok((Some(last), false));
    }
    let stored = state
        .store
        .put_samples(
            device_id,
            NewSamples {
                names: upload.names,
                seq: upload.seq,
                samples: upload.samples,
            },
        )
        .await?;
    Ok(match stored {
        SamplesStored::Upto(seq) => (Some(seq), false),
        SamplesStored::NeedNames => (None, true),
    })
}
