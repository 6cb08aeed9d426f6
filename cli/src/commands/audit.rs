//! `apiary audit`: who did what, newest first.

use crate::client::{Client, ClientError, encode};
use crate::output;

/// Which entries to list, as given on the command line.
pub struct Filter {
    pub actor: Option<String>,
    pub action: Option<String>,
    pub target: Option<String>,
    /// A duration back from now (`30m`, `12h`, `7d`) or a unix time.
    pub since: Option<String>,
    pub limit: u32,
}

pub fn list(c: &Client, filter: Filter, json: bool) -> Result<(), ClientError> {
    let mut query = vec![format!("limit={}", filter.limit)];
    for (key, value) in [
        ("actor", filter.actor),
        ("action", filter.action),
        ("target", filter.target),
    ] {
        if let Some(v) = value {
            query.push(format!("{key}={}", encode(&v, false)));
        }
    }
    if let Some(s) = filter.since {
        query.push(format!("since={}", parse_since(&s)?));
    }
    output::print(
        &c.get(&format!("/audit?{}", query.join("&")))?,
        json,
        output::audit,
    );
    Ok(())
}

/// `30m`, `12h`, `7d` ago, or a unix time, as unix seconds.
pub(super) fn parse_since(text: &str) -> Result<i64, ClientError> {
    if let Ok(unix) = text.parse::<i64>() {
        return Ok(unix);
    }
    let seconds = parse_duration(text).map_err(|_| {
        ClientError::Usage(format!(
            "--since {text:?}: use e.g. 30m, 12h, 7d or a unix time"
        ))
    })?;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    Ok(now - seconds as i64)
}

/// `90s`, `30m`, `12h`, `7d` as seconds.
pub(super) fn parse_duration(text: &str) -> Result<u64, ClientError> {
    let bad = || {
        ClientError::Usage(format!(
            "{text:?} is no duration: use e.g. 90s, 30m, 12h or 7d"
        ))
    };
    let (number, unit) = text.split_at(text.len().saturating_sub(1));
    let n: u64 = number.parse().map_err(|_| bad())?;
    let unit = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => return Err(bad()),
    };
    n.checked_mul(unit).ok_or_else(bad)
}
