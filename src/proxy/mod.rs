//! Minion mode: a read-only HTTP proxy from the network to the local Docker daemon's Unix
//! socket, for the master to read this node's containers, images and processes.
//!
//! The Docker socket is root on the host, so the proxy forwards only the six read-only
//! requests of the allow-list ([`allow`], contract §1) and nothing else, rebuilt from what
//! the allow-list parsed. Refusals (403 for a path or query, 405 for a method) never touch
//! the daemon. A daemon that is down, slow or answers something that is not HTTP gives 502;
//! its own status and body are passed through otherwise, within the body cap of the client
//! configuration. Failures are `ProxyError`s, mapped to statuses in one place.

mod allow;

use std::path::PathBuf;
use std::sync::Arc;

use crate::collect::runtime::docker::DEFAULT_SOCKET;
use crate::http::layers::{self, printable};
use crate::http::{
    client, Body, Client, ClientConfig, Endpoint, Handler, Method, Request, Response,
};
use crate::report::chain;
use allow::{check_request, Decision, Refusal};

/// How much of a refused target goes into the log line.
const LOGGED_TARGET_CHARS: usize = 200;

/// Response headers of the daemon passed on beside the status, `Content-Type` and body:
/// Docker clients read the API version and OS from `/_ping`.
const PASSED_HEADERS: [&str; 3] = ["Api-Version", "Docker-Experimental", "Ostype"];

#[derive(Debug, Clone)]
pub struct ProxyConfig {
    pub docker_socket: PathBuf,
    pub client: ClientConfig,
}

impl Default for ProxyConfig {
    fn default() -> Self {
        ProxyConfig {
            docker_socket: PathBuf::from(DEFAULT_SOCKET),
            client: ClientConfig::default(),
        }
    }
}

/// Why the proxy answers with an error of its own.
#[derive(Debug)]
enum ProxyError {
    Refused(Refusal),
    /// The daemon could not be asked, or did not answer in HTTP.
    Daemon {
        endpoint: String,
        error: client::Error,
    },
}

impl ProxyError {
    fn status(&self) -> u16 {
        match self {
            ProxyError::Refused(Refusal::Method(_)) => 405,
            ProxyError::Refused(Refusal::Target(_)) => 403,
            ProxyError::Daemon { .. } => 502,
        }
    }

    fn response(&self) -> Response {
        let message = match self {
            ProxyError::Refused(refusal) => refusal.message(),
            ProxyError::Daemon { endpoint, error } => {
                format!("Docker daemon at {endpoint} failed: {}", chain(error))
            }
        };
        let response = Response::error(self.status(), &message);
        match self {
            ProxyError::Refused(Refusal::Method(_)) => response.with_header("Allow", "GET, HEAD"),
            _ => response,
        }
    }
}

/// The HTTP handler of minion mode: the proxy inside an access log. Methods are the
/// allow-list's to refuse (it names them, contract §1), so no read-only layer sits in front.
pub fn handler(config: ProxyConfig) -> Handler {
    let client = Client::new(Endpoint::Unix(config.docker_socket), config.client);
    let proxy: Handler = Arc::new(move |request: &Request| {
        forward(&client, request).unwrap_or_else(|e| e.response())
    });
    layers::access_log("minion", proxy)
}

fn forward(client: &Client, request: &Request) -> Result<Response, ProxyError> {
    let target = match check_request(&request.method, &request.target) {
        Decision::Forward(target) => target,
        Decision::Refuse(refusal) => {
            log::info!(
                "refused {} {}: {}",
                printable(request.method.as_str(), LOGGED_TARGET_CHARS),
                printable(&request.target, LOGGED_TARGET_CHARS),
                refusal.message()
            );
            return Err(ProxyError::Refused(refusal));
        }
    };
    let answer = client
        .request(request.method.as_str(), &target)
        .map_err(|error| {
            log::warn!(
                "{} {target}: Docker daemon at {}: {}",
                request.method.as_str(),
                client.endpoint(),
                chain(&error)
            );
            ProxyError::Daemon {
                endpoint: client.endpoint().to_string(),
                error,
            }
        })?;
    let content_type = answer
        .header("Content-Type")
        .unwrap_or("application/octet-stream");
    let mut response = Response::new(answer.status, content_type, Body::Empty);
    for name in PASSED_HEADERS {
        if let Some(value) = answer.header(name) {
            response = response.with_header(name, value);
        }
    }
    if request.method == Method::Head {
        // The daemon's answer to HEAD has no body, but says how long it would be.
        if let Some(length) = answer.header("Content-Length") {
            response = response.with_header("Content-Length", length);
        }
    }
    response.body = Body::Owned(answer.body);
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_are_json_with_allow_on_405() {
        let handle = handler(ProxyConfig {
            docker_socket: "/nonexistent/docker.sock".into(),
            client: ClientConfig::default(),
        });
        let response = handle(&Request::get("/containers/create"));
        assert_eq!(response.status, 403);
        assert_eq!(response.header("Content-Type"), Some("application/json"));
        let body: serde_json::Value = serde_json::from_slice(&response.body.to_vec()).unwrap();
        assert_eq!(body["success"], false);
        assert!(body["timestamp"].as_str().unwrap().ends_with('Z'));
        assert!(body["error_message"]
            .as_str()
            .unwrap()
            .contains("not allowed"));

        let mut post = Request::get("/containers/create");
        post.method = Method::Other("POST".into());
        let response = handle(&post);
        assert_eq!(response.status, 405);
        assert_eq!(response.header("Allow"), Some("GET, HEAD"));

        // An allowed request with no daemon behind the socket.
        let response = handle(&Request::get("/version"));
        assert_eq!(response.status, 502);
        let body: serde_json::Value = serde_json::from_slice(&response.body.to_vec()).unwrap();
        assert_eq!(body["success"], false);
    }
}
