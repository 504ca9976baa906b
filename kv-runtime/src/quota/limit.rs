//! The one rate-limit mechanism: every limit (a table's `rate_limit`, a
//! log's, a [`Quota`](super::Quota)) counts uses through the backend's
//! [`RateCounter`](crate::backend::RateCounter) here, and answers
//! `RATE_LIMITED` the same way.

use std::time::Duration;

use crate::backend::{RateDecision, Usage, Window};
use crate::context::Ctx;
use crate::error::{Error, Result};
use crate::schema::RateLimit;
use crate::store::Store;

/// The window of a declared rate limit.
pub(crate) fn window(limit: RateLimit) -> Window {
    Window {
        max: limit.max,
        window_ms: i64::try_from(limit.window_ms).unwrap_or(i64::MAX),
    }
}

/// The bucket a caller's writes count in: the user id, else the client
/// address, else one shared anonymous bucket. `None` for internal callers,
/// who are exempt.
pub(crate) fn caller_bucket(ctx: &Ctx) -> Option<String> {
    if ctx.is_internal() {
        return None;
    }
    Some(match (ctx.user_id(), ctx.client_addr()) {
        (Some(user), _) => format!("user:{user}"),
        (None, Some(addr)) => format!("addr:{addr}"),
        (None, None) => "anonymous".to_owned(),
    })
}

/// Milliseconds as a duration (at least 1 ms when positive is meant).
pub(crate) fn millis(ms: i64) -> Duration {
    Duration::from_millis(u64::try_from(ms).unwrap_or(0))
}

/// Consumes `n` uses of `bucket` in `scope`, or fails with
/// [`Error::RateLimited`] naming `label` (the table, log or quota) and
/// saying when they would fit. Returns the usage after them.
pub(crate) async fn consume(
    store: &Store,
    scope: &str,
    label: &'static str,
    bucket: &str,
    window: Window,
    n: u32,
) -> Result<Usage> {
    let decision = store
        .backend
        .rate_counter()
        .consume(scope, bucket, window, n, store.now())
        .await?;
    match decision {
        RateDecision::Admitted(usage) => Ok(usage),
        RateDecision::Limited { retry_after_ms, .. } => Err(Error::RateLimited {
            table: label,
            retry_after: millis(retry_after_ms.max(1)),
        }),
    }
}

/// Counts `n` writes of `ctx` against a declared limit (`None`: no limit),
/// in `scope`; internal callers are exempt.
pub(crate) async fn count_writes(
    store: &Store,
    scope: &str,
    label: &'static str,
    limit: Option<RateLimit>,
    ctx: &Ctx,
    n: u32,
) -> Result<()> {
    let (Some(limit), Some(bucket)) = (limit, caller_bucket(ctx)) else {
        return Ok(());
    };
    if n > limit.max {
        // Would never fit: say so, rather than "retry in forever".
        return Err(Error::ValidationFailed {
            table: label,
            fields: vec![crate::error::FieldError::new(
                "",
                format!(
                    "{n} writes in one call exceed the rate limit of {} per window; split the call",
                    limit.max
                ),
            )],
        });
    }
    consume(store, scope, label, &bucket, window(limit), n)
        .await
        .map(drop)
}
