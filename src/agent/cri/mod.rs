//! A read-only client of the CRI `runtime.v1` gRPC API, the one containerd and CRI-O serve
//! on their Unix sockets (`/run/containerd/containerd.sock`, `/var/run/crio/crio.sock`).
//!
//! Synchronous like the rest of the agent: each call blocks its thread until the answer, an
//! error or its timeout. The messages are prost types generated once from the CRI proto
//! ([`api`]); they go over a small HTTP/2 client of our own (`h2`), see ARCHITECTURE.md.

// Generated code: the proto's comments, which become its docs, write placeholders such as
// `<size>` that rustdoc takes for HTML tags; they are not ours to change.
#[allow(rustdoc::invalid_html_tags)]
pub mod api;
mod h2;
mod json;

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use parking_lot::Mutex;
use prost::Message;

use h2::Connection;

/// kubelet's cap on a CRI answer; a node's lists fit well within it.
pub const MAX_MESSAGE: usize = 16 * 1024 * 1024;
/// Long enough for a busy runtime's full lists, short enough that a hung runtime does not
/// stall the agent for long.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
/// The CRI version kubelet announces in VersionRequest.
const KUBELET_API_VERSION: &str = "0.1.0";

const VERSION: &str = "/runtime.v1.RuntimeService/Version";
const LIST_POD_SANDBOX: &str = "/runtime.v1.RuntimeService/ListPodSandbox";
const POD_SANDBOX_STATUS: &str = "/runtime.v1.RuntimeService/PodSandboxStatus";
const LIST_CONTAINERS: &str = "/runtime.v1.RuntimeService/ListContainers";
const CONTAINER_STATUS: &str = "/runtime.v1.RuntimeService/ContainerStatus";
const LIST_IMAGES: &str = "/runtime.v1.ImageService/ListImages";
const IMAGE_STATUS: &str = "/runtime.v1.ImageService/ImageStatus";

/// A client of one runtime socket. Connects on first use and again after any error that
/// leaves the connection in doubt, or after the runtime says GOAWAY. Calls from several
/// threads take turns on the one connection.
pub struct CriClient {
    socket: PathBuf,
    timeout: Duration,
    max_message: usize,
    conn: Mutex<Option<Connection>>,
}

impl CriClient {
    /// A client of the runtime listening at `socket`; nothing is connected yet.
    pub fn new(socket: impl Into<PathBuf>) -> Self {
        CriClient {
            socket: socket.into(),
            timeout: DEFAULT_TIMEOUT,
            max_message: MAX_MESSAGE,
            conn: Mutex::new(None),
        }
    }

    /// The time each call has, connecting included.
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The largest answer accepted; [`MAX_MESSAGE`] unless set.
    pub fn with_max_message(mut self, max_message: usize) -> Self {
        self.max_message = max_message;
        self
    }

    pub fn socket(&self) -> &Path {
        &self.socket
    }

    pub fn version(&self) -> Result<api::VersionResponse, CriError> {
        let request = api::VersionRequest {
            version: KUBELET_API_VERSION.to_owned(),
        };
        self.call(VERSION, &request)
    }

    pub fn list_pod_sandboxes(&self) -> Result<Vec<api::PodSandbox>, CriError> {
        let answer: api::ListPodSandboxResponse =
            self.call(LIST_POD_SANDBOX, &api::ListPodSandboxRequest::default())?;
        Ok(answer.items)
    }

    pub fn pod_sandbox_status(
        &self,
        id: &str,
        verbose: bool,
    ) -> Result<api::PodSandboxStatusResponse, CriError> {
        let request = api::PodSandboxStatusRequest {
            pod_sandbox_id: id.to_owned(),
            verbose,
        };
        self.call(POD_SANDBOX_STATUS, &request)
    }

    pub fn list_containers(&self) -> Result<Vec<api::Container>, CriError> {
        let answer: api::ListContainersResponse =
            self.call(LIST_CONTAINERS, &api::ListContainersRequest::default())?;
        Ok(answer.containers)
    }

    pub fn container_status(
        &self,
        id: &str,
        verbose: bool,
    ) -> Result<api::ContainerStatusResponse, CriError> {
        let request = api::ContainerStatusRequest {
            container_id: id.to_owned(),
            verbose,
        };
        self.call(CONTAINER_STATUS, &request)
    }

    pub fn list_images(&self) -> Result<Vec<api::Image>, CriError> {
        let answer: api::ListImagesResponse =
            self.call(LIST_IMAGES, &api::ListImagesRequest::default())?;
        Ok(answer.images)
    }

    pub fn image_status(
        &self,
        image_ref: &str,
        verbose: bool,
    ) -> Result<api::ImageStatusResponse, CriError> {
        let request = api::ImageStatusRequest {
            image: Some(api::ImageSpec {
                image: image_ref.to_owned(),
                ..Default::default()
            }),
            verbose,
        };
        self.call(IMAGE_STATUS, &request)
    }

    fn call<Q: Message, A: Message + Default>(
        &self,
        method: &'static str,
        request: &Q,
    ) -> Result<A, CriError> {
        let fail = |cause| CriError {
            call: format!("{method} at unix:{}", self.socket.display()),
            cause,
        };
        let bytes = self
            .exchange(method, &request.encode_to_vec())
            .map_err(fail)?;
        A::decode(bytes.as_slice()).map_err(|e| fail(Cause::Decode(e)))
    }

    fn exchange(&self, method: &str, request: &[u8]) -> Result<Vec<u8>, Cause> {
        let mut slot = self.conn.lock();
        if !slot.as_ref().is_some_and(Connection::usable) {
            *slot = None;
            *slot = Some(Connection::connect(&self.socket, self.timeout)?);
        }
        let Some(conn) = slot.as_mut() else {
            return Err(Cause::Protocol("no connection".to_owned()));
        };
        let result = conn.unary(method, request, self.timeout, self.max_message);
        // A gRPC status ends its stream cleanly; after anything else the connection may hold
        // half an answer, so the next call starts on a new one.
        if matches!(result, Err(ref e) if !matches!(e, Cause::Status { .. })) {
            *slot = None;
        }
        result
    }
}

/// A failed CRI call: which call, on which socket, and why.
#[derive(Debug)]
pub struct CriError {
    call: String,
    cause: Cause,
}

impl CriError {
    /// The gRPC method and socket, e.g.
    /// `/runtime.v1.RuntimeService/ListContainers at unix:/run/containerd/containerd.sock`.
    pub fn call(&self) -> &str {
        &self.call
    }

    pub fn cause(&self) -> &Cause {
        &self.cause
    }

    /// The gRPC status code, when the runtime answered with one.
    pub fn code(&self) -> Option<Code> {
        match self.cause {
            Cause::Status { code, .. } => Some(code),
            _ => None,
        }
    }

    /// The runtime does not serve this call (an older or partial CRI implementation).
    pub fn is_unimplemented(&self) -> bool {
        self.code() == Some(Code::Unimplemented)
    }

    /// The container, sandbox or image asked about is gone.
    pub fn is_not_found(&self) -> bool {
        self.code() == Some(Code::NotFound)
    }
}

impl fmt::Display for CriError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CRI call {}: {}", self.call, self.cause)
    }
}

impl std::error::Error for CriError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match &self.cause {
            Cause::Io(e) => Some(e),
            Cause::Decode(e) => Some(e),
            _ => None,
        }
    }
}

/// Why a CRI call failed.
#[derive(Debug)]
#[non_exhaustive]
pub enum Cause {
    /// Connecting, reading or writing the socket failed, or the call's time ran out
    /// (`TimedOut` or `WouldBlock`).
    Io(std::io::Error),
    /// The runtime broke HTTP/2 or gRPC framing.
    Protocol(String),
    /// The runtime said GOAWAY before taking the call; a later call reconnects.
    GoAway { code: u32, debug: String },
    /// The runtime answered with a gRPC error status.
    Status { code: Code, message: String },
    /// The answer is not the protobuf message the call returns.
    Decode(prost::DecodeError),
    /// The answer is larger than the client accepts.
    TooLarge { limit: usize },
}

impl fmt::Display for Cause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Cause::Io(e) => write!(f, "socket: {e}"),
            Cause::Protocol(text) => write!(f, "protocol violation: {text}"),
            Cause::GoAway { code, debug } => {
                write!(
                    f,
                    "the runtime closed the connection (GOAWAY, code {code}) {debug}"
                )
            }
            Cause::Status { code, message } => write!(f, "gRPC status {code:?}: {message}"),
            Cause::Decode(e) => write!(f, "answer does not decode: {e}"),
            Cause::TooLarge { limit } => write!(f, "answer larger than {limit} bytes"),
        }
    }
}

/// gRPC status codes (grpc/doc/statuscodes.md), 0 (OK) aside.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Code {
    Cancelled,
    Unknown,
    InvalidArgument,
    DeadlineExceeded,
    NotFound,
    AlreadyExists,
    PermissionDenied,
    ResourceExhausted,
    FailedPrecondition,
    Aborted,
    OutOfRange,
    Unimplemented,
    Internal,
    Unavailable,
    DataLoss,
    Unauthenticated,
    /// A number gRPC does not define.
    Other(u32),
}

impl Code {
    pub fn from_u32(code: u32) -> Code {
        match code {
            1 => Code::Cancelled,
            2 => Code::Unknown,
            3 => Code::InvalidArgument,
            4 => Code::DeadlineExceeded,
            5 => Code::NotFound,
            6 => Code::AlreadyExists,
            7 => Code::PermissionDenied,
            8 => Code::ResourceExhausted,
            9 => Code::FailedPrecondition,
            10 => Code::Aborted,
            11 => Code::OutOfRange,
            12 => Code::Unimplemented,
            13 => Code::Internal,
            14 => Code::Unavailable,
            15 => Code::DataLoss,
            16 => Code::Unauthenticated,
            other => Code::Other(other),
        }
    }
}

#[cfg(test)]
mod tests;
