//! Readable forms of the WIT `error`, for models and people: the generated
//! `Display` only repeats the `Debug` form.

use crate::Error;

impl Error {
    /// The case, in words: `not found`, `invalid arguments`, ...
    pub fn kind(&self) -> &'static str {
        match self {
            Error::RateLimited(_) => "rate limited",
            Error::Timeout(_) => "timeout",
            Error::InvalidRequest(_) => "invalid request",
            Error::NotAllowed(_) => "not allowed",
            Error::NotFound(_) => "not found",
            Error::InvalidArguments(_) => "invalid arguments",
            Error::ToolFailed(_) => "tool failed",
            Error::Crashed(_) => "crashed",
            Error::Provider(_) => "provider error",
            Error::BudgetExceeded(_) => "budget exceeded",
            Error::LimitExceeded(_) => "limit exceeded",
            Error::Unavailable(_) => "unavailable",
        }
    }

    /// The message the error carries.
    pub fn message(&self) -> &str {
        match self {
            Error::RateLimited(limit) => &limit.message,
            Error::Timeout(m)
            | Error::InvalidRequest(m)
            | Error::NotAllowed(m)
            | Error::NotFound(m)
            | Error::InvalidArguments(m)
            | Error::ToolFailed(m)
            | Error::Crashed(m)
            | Error::Provider(m)
            | Error::BudgetExceeded(m)
            | Error::LimitExceeded(m)
            | Error::Unavailable(m) => m,
        }
    }

    /// `kind: message`, as one line.
    pub fn summary(&self) -> String {
        format!("{}: {}", self.kind(), self.message())
    }
}
