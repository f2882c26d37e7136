//! Forwarding an allowed request to the Docker daemon, so that a slow daemon or many callers
//! cost the minion little:
//! - at most `limit` requests wait on the daemon at once; one more is a 503 at once, so that
//!   the workers left answer refusals, `/healthz` and `/node` whatever the daemon does;
//! - an answer is shared for a second by every caller of the same request that comes after
//!   it: a few hundred callers of a large list hold one copy of it, not one each (callers at
//!   the very same moment each ask, up to the limit). At most 64 MiB of answers are shared;
//!   beyond, an answer is its caller's own, which the server counts against its cap.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use super::allow::is_container_inspect;
use super::{ProxyError, PASSED_HEADERS};
use crate::collect::runtime::docker::redact_env;
use crate::http::{Body, Client, Method, Request, Response};
use crate::report::chain;

/// How long an answer of the daemon serves callers of the same request.
const SHARED_FOR: Duration = Duration::from_secs(1);
/// Answers kept at most (the allow-list's targets name containers and images, so they are
/// as many as a node has, but a caller could make up names), and their bytes at most: an
/// answer past either is its caller's own, counted by the server like any other.
const RECENT_MAX: usize = 512;
const RECENT_MAX_BYTES: usize = 64 << 20;

pub(super) struct Forwarder {
    client: Client,
    show_env: bool,
    limit: usize,
    busy: AtomicUsize,
    recent: Mutex<HashMap<String, (Instant, Arc<Forwarded>)>>,
}

/// What the daemon answered, as passed on.
struct Forwarded {
    status: u16,
    headers: Vec<(String, String)>,
    body: Arc<[u8]>,
}

/// One of the `limit` requests that may wait on the daemon.
struct Permit<'a>(&'a AtomicUsize);

impl Drop for Permit<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Forwarder {
    /// `limit`: requests that may wait on the daemon at once (at least one).
    pub(super) fn new(client: Client, show_env: bool, limit: usize) -> Forwarder {
        Forwarder {
            client,
            show_env,
            limit: limit.max(1),
            busy: AtomicUsize::new(0),
            recent: Mutex::new(HashMap::new()),
        }
    }

    /// Forwards `request`, whose allowed form is `target`.
    pub(super) fn forward(&self, request: &Request, target: &str) -> Result<Response, ProxyError> {
        let key = format!("{} {target}", request.method.as_str());
        let shared = {
            let mut recent = self.recent.lock();
            // Gone once their second is over, whether asked for again or not.
            let now = Instant::now();
            recent.retain(|_, (at, _)| now.duration_since(*at) < SHARED_FOR);
            recent.get(&key).map(|(_, answer)| Arc::clone(answer))
        };
        let (answer, body) = match shared {
            Some(answer) => {
                let body = Body::Shared(Arc::clone(&answer.body));
                (answer, body)
            }
            None => {
                let answer = Arc::new(self.ask(request, target)?);
                let mut recent = self.recent.lock();
                let held: usize = recent.values().map(|(_, a)| a.body.len()).sum();
                if recent.len() < RECENT_MAX && held + answer.body.len() <= RECENT_MAX_BYTES {
                    recent.insert(key, (Instant::now(), Arc::clone(&answer)));
                    let body = Body::Shared(Arc::clone(&answer.body));
                    (answer, body)
                } else {
                    // Not shared: the caller's own, which the server counts while it waits
                    // for a slow reader.
                    let body = Body::Owned(answer.body.to_vec());
                    (answer, body)
                }
            }
        };
        Ok(Response {
            status: answer.status,
            headers: answer.headers.clone(),
            body: if request.method == Method::Head {
                Body::Empty
            } else {
                body
            },
            stream: None,
        })
    }

    /// Asks the daemon, if fewer than `limit` requests wait on it already.
    fn ask(&self, request: &Request, target: &str) -> Result<Forwarded, ProxyError> {
        if self.busy.fetch_add(1, Ordering::SeqCst) >= self.limit {
            self.busy.fetch_sub(1, Ordering::SeqCst);
            return Err(ProxyError::Busy { limit: self.limit });
        }
        let _permit = Permit(&self.busy);
        let endpoint = || self.client.endpoint().to_string();
        let answer = self
            .client
            .request(request.method.as_str(), target)
            .map_err(|error| {
                log::warn!(
                    "{} {target}: Docker daemon at {}: {}",
                    request.method.as_str(),
                    self.client.endpoint(),
                    chain(&error)
                );
                ProxyError::Daemon {
                    endpoint: endpoint(),
                    error,
                }
            })?;
        let content_type = answer
            .header("Content-Type")
            .unwrap_or("application/octet-stream");
        let mut headers = vec![("Content-Type".to_string(), content_type.to_string())];
        for name in PASSED_HEADERS {
            if let Some(value) = answer.header(name) {
                headers.push((name.to_string(), value.to_string()));
            }
        }
        let redacts = !self.show_env && is_container_inspect(target);
        if request.method == Method::Head && !redacts {
            if let Some(length) = answer.header("Content-Length") {
                headers.push(("Content-Length".to_string(), length.to_string()));
            }
        }
        let body: Arc<[u8]> =
            if redacts && (200..300).contains(&answer.status) && request.method != Method::Head {
                redacted_inspect(&answer.body)
                    .ok_or_else(|| ProxyError::Unredactable {
                        endpoint: endpoint(),
                    })?
                    .into()
            } else {
                answer.body.into()
            };
        Ok(Forwarded {
            status: answer.status,
            headers,
            body,
        })
    }
}

fn redacted_inspect(body: &[u8]) -> Option<Vec<u8>> {
    let mut value: serde_json::Value = serde_json::from_slice(body).ok()?;
    if !value.is_object() {
        return None;
    }
    redact_env(&mut value);
    serde_json::to_vec(&value).ok()
}
