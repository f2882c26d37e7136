//! The master API's failures, and the one place that maps each to its HTTP status.

use crate::http::Response;

/// Why the API cannot answer a request with what it asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ApiError {
    /// The path is not valid percent-encoded UTF-8.
    BadPath,
    /// `/cluster/resources/TYPE` with a TYPE the table does not know.
    UnknownType(String),
    NoSuchEndpoint(String),
    /// The first refresh has not finished.
    NoSnapshotYet,
    /// A type added since the current snapshot was made: the next one has it.
    NotCollectedYet(String),
    /// A query parameter this endpoint does not take: its name, and the ones it takes.
    UnknownParameter(String, &'static [&'static str]),
    /// A query parameter with a value that cannot be used, and why.
    BadParameter(String),
    /// No resource with this ID in the snapshot asked about.
    NoSuchResource(String),
    /// A time or sequence older than the history kept, or not of this process; the message.
    Gone(String),
    /// Too much of one kind of work is under way (earlier snapshots made, streams open).
    Busy(String),
}

impl ApiError {
    pub(crate) fn status(&self) -> u16 {
        match self {
            ApiError::BadPath | ApiError::UnknownParameter(..) | ApiError::BadParameter(_) => 400,
            ApiError::NoSuchResource(_) => 404,
            ApiError::Gone(_) => 410,
            ApiError::UnknownType(_) | ApiError::NoSuchEndpoint(_) => 404,
            ApiError::NoSnapshotYet | ApiError::NotCollectedYet(_) | ApiError::Busy(_) => 503,
        }
    }

    fn message(&self) -> String {
        match self {
            ApiError::BadPath => "the request path is not valid percent-encoded UTF-8".into(),
            ApiError::UnknownType(name) => format!(
                "unknown resource type {:?}; valid types: {}",
                truncate(name, 64),
                super::home::valid_types()
            ),
            ApiError::NoSuchEndpoint(path) => {
                format!("no such endpoint: {}", truncate(path, 128))
            }
            ApiError::NoSnapshotYet => "no snapshot yet: the first refresh has not finished, or \
                                        no Kubernetes list has succeeded yet (see /status)"
                .into(),
            ApiError::NotCollectedYet(kind) => {
                format!("{kind} is being collected for the first time: ask again shortly")
            }
            ApiError::UnknownParameter(name, []) => format!(
                "unknown query parameter {:?}: this endpoint takes none",
                truncate(name, 64)
            ),
            ApiError::UnknownParameter(name, known) => format!(
                "unknown query parameter {:?}; this endpoint takes: {}",
                truncate(name, 64),
                known.join(", ")
            ),
            ApiError::BadParameter(why) => truncate(why, 512),
            ApiError::NoSuchResource(id) => {
                format!("no resource {} in this snapshot", truncate(id, 256))
            }
            ApiError::Gone(why) | ApiError::Busy(why) => why.clone(),
        }
    }

    /// The error answer (contract §2), with `Retry-After` where waiting helps.
    pub(crate) fn response(&self) -> Response {
        let response = Response::error(self.status(), &self.message());
        match self {
            ApiError::NoSnapshotYet | ApiError::NotCollectedYet(_) | ApiError::Busy(_) => {
                response.with_header("Retry-After", "2")
            }
            _ => response,
        }
    }
}

fn truncate(s: &str, max: usize) -> String {
    let mut out: String = s.chars().take(max).collect();
    if out.len() < s.len() {
        out.push('…');
    }
    out
}
