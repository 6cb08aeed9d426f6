//! Request bodies of the device API: each route's own size limit, a deadline for the whole
//! body, and JSON parsing only after both (and, for the check-in, after authentication).

use std::time::Duration;

use axum::body::Body;
use axum::http::{HeaderMap, StatusCode, header};
use futures_util::StreamExt;
use serde::de::DeserializeOwned;

use crate::error::ApiError;

/// Time a client has to send a whole body once its headers are in.
pub const BODY_TIMEOUT: Duration = Duration::from_secs(30);

/// Reads and parses a JSON body of at most `limit` bytes, refusing a declared length over
/// the limit before reading a byte of it.
pub async fn read_json<T: DeserializeOwned>(
    headers: &HeaderMap,
    body: Body,
    limit: usize,
) -> Result<T, ApiError> {
    let too_large = || {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("the body is over {limit} bytes"),
        )
    };
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return Err(too_large());
    }
    let bytes = match tokio::time::timeout(BODY_TIMEOUT, collect(body, limit)).await {
        Err(_) => {
            return Err(ApiError::new(
                StatusCode::REQUEST_TIMEOUT,
                format!(
                    "the body did not arrive within {} s",
                    BODY_TIMEOUT.as_secs()
                ),
            ));
        }
        Ok(Err(Collect::TooLarge)) => return Err(too_large()),
        Ok(Err(Collect::Read(e))) => {
            return Err(ApiError::bad_request(format!("reading the body: {e}")));
        }
        Ok(Ok(bytes)) => bytes,
    };
    serde_json::from_slice(&bytes)
        .map_err(|e| ApiError::bad_request(format!("invalid request body: {e}")))
}

enum Collect {
    TooLarge,
    Read(axum::Error),
}

/// The body's bytes, stopping at the first chunk that goes over `limit` (a chunked body
/// declares no length).
async fn collect(body: Body, limit: usize) -> Result<Vec<u8>, Collect> {
    let mut stream = body.into_data_stream();
    let mut bytes = Vec::new();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(Collect::Read)?;
        if bytes.len() + chunk.len() > limit {
            return Err(Collect::TooLarge);
        }
        bytes.extend_from_slice(&chunk);
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;
    use futures_util::stream;

    fn run<T>(f: impl Future<Output = T>) -> T {
        tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .start_paused(true)
            .build()
            .expect("runtime")
            .block_on(f)
    }

    fn declaring(length: usize) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::CONTENT_LENGTH, HeaderValue::from(length));
        h
    }

    /// A body whose chunks arrive and then never ends, as a slow client's would.
    fn endless(chunks: Vec<&'static str>) -> Body {
        let head = stream::iter(chunks.into_iter().map(Ok::<_, std::io::Error>));
        Body::from_stream(head.chain(stream::pending()))
    }

    #[test]
    fn a_declared_length_over_the_limit_is_refused_before_reading() {
        let err = run(read_json::<serde_json::Value>(
            &declaring(101),
            endless(vec![]),
            100,
        ))
        .expect_err("too large");
        assert_eq!(err.status, StatusCode::PAYLOAD_TOO_LARGE);
    }

    #[test]
    fn an_undeclared_body_is_cut_off_at_the_limit() {
        let chunks = vec!["[1,", "2,3,4,5,6,7,8,9,", "10,11,12]"];
        let err = run(read_json::<serde_json::Value>(
            &HeaderMap::new(),
            endless(chunks),
            20,
        ))
        .expect_err("too large");
        assert_eq!(err.status, StatusCode::PAYLOAD_TOO_LARGE);
    }

    #[test]
    fn a_body_that_never_ends_times_out() {
        let err = run(read_json::<serde_json::Value>(
            &declaring(50),
            endless(vec!["[1,"]),
            100,
        ))
        .expect_err("never complete");
        assert_eq!(err.status, StatusCode::REQUEST_TIMEOUT);
    }

    #[test]
    fn a_body_within_the_limit_is_parsed_and_bad_json_named() {
        let ok: Vec<u32> = run(read_json(&declaring(7), Body::from("[1,2,3]"), 7)).expect("fits");
        assert_eq!(ok, [1, 2, 3]);
        let err = run(read_json::<Vec<u32>>(
            &HeaderMap::new(),
            Body::from("[1,"),
            7,
        ))
        .expect_err("malformed");
        assert_eq!(err.status, StatusCode::BAD_REQUEST);
        assert!(
            err.message.contains("invalid request body"),
            "{}",
            err.message
        );
    }
}
