//! The domain error: what went wrong in words a user understands, classified so the API can
//! map it once to the wire format and the CLI can print it.

use std::fmt;

/// One field that failed validation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    pub field: String,
    pub rule: String,
    pub detail: String,
}

impl FieldError {
    pub fn new(field: &str, rule: &str, detail: impl Into<String>) -> FieldError {
        FieldError {
            field: field.to_string(),
            rule: rule.to_string(),
            detail: detail.into(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{0}")]
    BadRequest(String),
    #[error("The request lacks valid credentials.")]
    Unauthorized,
    #[error("The username or password is incorrect.")]
    LoginFailed,
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    InvalidSignature(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    TooManyBackups(String),
    #[error("{0}")]
    BackupNotCompleted(String),
    #[error("{0}")]
    BackupFailed(String),
    #[error("{0}")]
    BackupLocked(String),
    #[error("{}", .0.iter().map(|e| e.detail.as_str()).collect::<Vec<_>>().join(" "))]
    Validation(Vec<FieldError>),
    #[error("{0}")]
    UnsupportedMediaType(String),
    #[error("{detail}")]
    TooManyRequests { detail: String, retry_after: u64 },
    #[error("{0}")]
    InsufficientStorage(String),
    #[error("{0}")]
    Internal(String),
}

pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    pub fn invalid(field: &str, rule: &str, detail: impl Into<String>) -> Error {
        Error::Validation(vec![FieldError::new(field, rule, detail)])
    }

    pub fn not_found(what: impl fmt::Display) -> Error {
        Error::NotFound(format!("The requested {what} could not be found."))
    }

    pub fn permission() -> Error {
        Error::Forbidden("This action is unauthorized: you lack the permission it needs.".into())
    }

    pub fn internal(err: impl fmt::Display) -> Error {
        Error::Internal(err.to_string())
    }
}

impl From<crate::store::Error> for Error {
    fn from(err: crate::store::Error) -> Error {
        Error::Internal(err.to_string())
    }
}

impl From<rusqlite::Error> for Error {
    fn from(err: rusqlite::Error) -> Error {
        Error::Internal(format!("database error: {err}"))
    }
}

impl From<std::io::Error> for Error {
    fn from(err: std::io::Error) -> Error {
        Error::Internal(err.to_string())
    }
}
