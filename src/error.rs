//! The API client's `Error` and Twilio's `ApiError` (built in issue 3).

/// Why an API call failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Placeholder.
    #[error("not yet implemented")]
    Unimplemented,
}

/// The client's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;
