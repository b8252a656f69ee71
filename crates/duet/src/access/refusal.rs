//! Why a sign-in was refused: each cause with its HTTP status, a stable code for the
//! page (which says it in the page's language) and words for everyone else.

use std::time::Duration;

use axum::http::StatusCode;
use duet_access::InviteError;

/// Why a sign-in was refused, each with its HTTP status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SignInRefusal {
    /// The request is not a sign-in duet knows.
    BadRequest(&'static str),
    /// This kind of sign-in is not offered in this mode.
    NotOffered(&'static str),
    WrongPassword,
    Invite(InviteError),
    TooMany {
        retry_after: Duration,
    },
    /// Too many password hashes are waiting already.
    Busy,
    /// Too many wrong passwords lately: for this account (`account`), or for everyone.
    Resting {
        retry_after: Duration,
        account: bool,
    },
    /// The store could not be read or written.
    Unavailable(String),
}

impl SignInRefusal {
    pub fn status(&self) -> StatusCode {
        match self {
            Self::BadRequest(_) => StatusCode::BAD_REQUEST,
            Self::NotOffered(_) => StatusCode::FORBIDDEN,
            Self::WrongPassword => StatusCode::UNAUTHORIZED,
            Self::Invite(_) => StatusCode::GONE,
            Self::TooMany { .. } | Self::Resting { .. } => StatusCode::TOO_MANY_REQUESTS,
            Self::Busy => StatusCode::SERVICE_UNAVAILABLE,
            Self::Unavailable(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// A stable word for the page.
    pub fn code(&self) -> &'static str {
        match self {
            Self::BadRequest(_) => "bad-request",
            Self::NotOffered(_) => "not-offered",
            Self::WrongPassword => "wrong-password",
            Self::Invite(e) => e.code(),
            Self::TooMany { .. } => "too-many-attempts",
            Self::Busy | Self::Resting { account: false, .. } => "busy",
            Self::Resting { account: true, .. } => "account-resting",
            Self::Unavailable(_) => "unavailable",
        }
    }

    /// What the person is told.
    pub fn message(&self) -> String {
        match self {
            Self::BadRequest(m) | Self::NotOffered(m) => (*m).to_owned(),
            Self::WrongPassword => "Wrong name or password.".into(),
            Self::Invite(e) => format!("{}{}.", e.to_string()[..1].to_uppercase(), &e.to_string()[1..]),
            Self::TooMany { retry_after } => {
                format!(
                    "Too many attempts from your address: try again in {} seconds.",
                    retry_after.as_secs().max(1)
                )
            }
            Self::Busy | Self::Resting { account: false, .. } => {
                "The server is busy checking passwords: try again in a moment.".into()
            }
            Self::Resting { account: true, retry_after } => format!(
                "Too many wrong passwords for this account lately: try again in {} seconds, or from a device you signed in on before.",
                retry_after.as_secs().max(1)
            ),
            Self::Unavailable(_) => {
                "The server cannot reach its account store; the operator has been told.".into()
            }
        }
    }
}
