//! The audit log: every operator action, recorded by the operation that did it.

use crate::state::{AppState, now};
use crate::store::{AuditEntry, AuditFilter, StoreError};

/// Records an operator action. A failure to record is logged, never the operation's
/// failure: the change already happened.
pub async fn record(
    state: &AppState,
    actor: &str,
    action: &str,
    target: &str,
    detail: impl Into<String>,
) {
    let entry = AuditEntry {
        time: now(),
        actor: actor.to_string(),
        action: action.to_string(),
        target: target.to_string(),
        detail: detail.into(),
    };
    if let Err(e) = state.store.audit(entry).await {
        tracing::error!("cannot record audit entry {action} {target}: {e}");
    }
}

/// Entries matching `filter`, newest first.
pub async fn list(state: &AppState, filter: AuditFilter) -> Result<Vec<AuditEntry>, StoreError> {
    state.store.list_audit(filter).await
}
