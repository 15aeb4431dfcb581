//! What one checked `/authenticate` attempt came to. Its own file so that the
//! authenticator, which decides it, and the audit trail, which records it, both
//! import it from below instead of from each other.

/// Why a check failed. Never shown to the caller, who gets one message for all.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureReason {
    UnknownUser,
    BadPassword,
    Inactive,
    /// The stored hash is NULL, empty or of no recognised format.
    NoHash,
    /// Too many consecutive failures; the password was not checked.
    Locked,
    /// The credentials query returned several rows for the name: never guess.
    Ambiguous,
    /// The stored hash asks for more work than the caps allow; it never matches
    /// and is never run.
    HashTooCostly,
}

impl FailureReason {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::UnknownUser => "unknown_user",
            Self::BadPassword => "bad_password",
            Self::Inactive => "inactive",
            Self::NoHash => "no_hash",
            Self::Locked => "locked",
            Self::Ambiguous => "ambiguous_user",
            Self::HashTooCostly => "hash_too_costly",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthOutcome {
    Success,
    Failure(FailureReason),
}

impl AuthOutcome {
    /// The audit trail's `reason` column.
    pub fn reason(self) -> &'static str {
        match self {
            Self::Success => "success",
            Self::Failure(reason) => reason.as_str(),
        }
    }
}
