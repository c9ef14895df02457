//! Details of a 429 (a rate limit, a failed-auth lockout or a budget said no), carried by
//! [`super::Rejection::RateLimited`] to the response headers.

/// Details of a 429, for the response headers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limited<'g> {
    pub limit: &'g str,
    pub quota: u64,
    pub window_secs: u64,
    /// Whole seconds until one request is admitted again (at least 1).
    pub retry_after_secs: u64,
    /// Whole seconds until the bucket is full again.
    pub reset_secs: u64,
}
