//! Reading a request body, for the HTTP layer and the console: within a size limit and a
//! deadline, and within the byte budget shared by every body held in memory.

use std::time::Duration;

use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::header::CONTENT_LENGTH;
use tokio::sync::{Semaphore, SemaphorePermit};

/// Every response the daemon sends, the console's included: a whole body in memory.
pub type HttpResponse = hyper::Response<http_body_util::Full<Bytes>>;

/// Why a request body was not read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum BodyError {
    #[error("the body is larger than {0} bytes")]
    TooLarge(usize),
    #[error("the bodies held in memory are at their budget")]
    OverBudget,
    #[error("the body could not be read in time")]
    Unreadable,
}

/// Read at most `limit` bytes of body, giving up when the client has not sent the whole
/// body in `within`. Every KiB received is taken from `budget` (KiB permits) as it
/// arrives, never reserved ahead from a declared length: a client that announces a large
/// body and sends little holds little. The permits come back with the body.
pub async fn read_body_within<'a>(
    headers: &http::HeaderMap,
    body: Incoming,
    limit: usize,
    within: Duration,
    budget: &'a Semaphore,
) -> Result<(Bytes, Option<SemaphorePermit<'a>>), BodyError> {
    let declared = headers
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return Err(BodyError::TooLarge(limit));
    }
    let mut held: Option<SemaphorePermit<'a>> = None;
    let mut held_kib = 0usize;
    let mut received = bytes::BytesMut::new();
    let mut body = body;
    let collect = async {
        while let Some(frame) = body.frame().await {
            let Ok(data) = frame.map_err(|_| BodyError::Unreadable)?.into_data() else {
                continue;
            };
            if received.len() + data.len() > limit {
                return Err(BodyError::TooLarge(limit));
            }
            received.extend_from_slice(&data);
            let need_kib = received.len().div_ceil(1024);
            if need_kib > held_kib {
                let more = u32::try_from(need_kib - held_kib).map_err(|_| BodyError::OverBudget)?;
                let permit = budget
                    .try_acquire_many(more)
                    .map_err(|_| BodyError::OverBudget)?;
                match held.as_mut() {
                    Some(held) => held.merge(permit),
                    None => held = Some(permit),
                }
                held_kib = need_kib;
            }
        }
        Ok(())
    };
    match tokio::time::timeout(within, collect).await {
        Ok(Ok(())) => Ok((received.freeze(), held)),
        Ok(Err(e)) => Err(e),
        Err(_) => Err(BodyError::Unreadable),
    }
}
