//! File downloads for devices, with `Range` so an interrupted transfer resumes.

use axum::body::Body;
use axum::extract::{Extension, Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::Response;
use tokio::io::{AsyncReadExt, AsyncSeekExt};

use crate::error::ApiError;
use crate::state::Shared;
use crate::tls_server::ConnInfo;

/// `GET /v1/files/{sha256}` (mTLS): only content the device's current bundle references.
pub async fn download(
    State(state): State<Shared>,
    Extension(conn): Extension<ConnInfo>,
    Path(sha256): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let device = super::authenticated_device(&state, &conn).await?;
    let path = state
        .blobs
        .path(&sha256)
        .ok_or_else(|| ApiError::bad_request("file name must be a sha256 digest"))?;
    if !state.store.device_may_fetch(&device.id, &sha256).await? {
        return Err(ApiError::not_found(format!(
            "file {sha256} is not in the bundle of device {}",
            device.id
        )));
    }
    let mut file = tokio::fs::File::open(&path).await.map_err(|e| {
        ApiError::internal(format!("file {sha256} is referenced but unreadable: {e}"))
    })?;
    let size = file
        .metadata()
        .await
        .map_err(|e| ApiError::internal(e.to_string()))?
        .len();

    let range = match headers.get(header::RANGE) {
        None => None,
        Some(v) => match apiary_proto::range::parse(v.to_str().unwrap_or(""), size) {
            Some(r) => Some(r),
            None => {
                return Ok(Response::builder()
                    .status(StatusCode::RANGE_NOT_SATISFIABLE)
                    .header(header::CONTENT_RANGE, format!("bytes */{size}"))
                    .body(Body::empty())
                    .expect("static response is valid"));
            }
        },
    };
    let (start, end) = range.unwrap_or((0, size.saturating_sub(1)));
    let len = if size == 0 { 0 } else { end - start + 1 };
    file.seek(std::io::SeekFrom::Start(start))
        .await
        .map_err(|e| ApiError::internal(e.to_string()))?;
    let stream = tokio_util::io::ReaderStream::with_capacity(file.take(len), 64 * 1024);
    let mut response = Response::builder()
        .header(header::CONTENT_TYPE, "application/octet-stream")
        .header(header::CONTENT_LENGTH, len)
        .header(header::ACCEPT_RANGES, "bytes")
        .header(
            "x-content-sha256",
            HeaderValue::from_str(&sha256).expect("hex is a valid header"),
        );
    if range.is_some() {
        response = response
            .status(StatusCode::PARTIAL_CONTENT)
            .header(header::CONTENT_RANGE, format!("bytes {start}-{end}/{size}"));
    }
    Ok(response
        .body(Body::from_stream(stream))
        .expect("response parts are valid"))
}
