//! Who may read: every request but the probes' carries a bearer token, checked before any
//! handler runs (contract §8).
//!
//! - [`Authorizer::Delegated`]: the API server decides, as it does for kubelet and
//!   metrics-server: a `TokenReview` says who the token is, a `SubjectAccessReview` whether
//!   they may `get` the request's path (a non-resource URL, granted by a ClusterRole's
//!   `nonResourceURLs`). Both answers are cached briefly ([`delegated`]).
//! - [`Authorizer::Token`]: one shared token, from `--auth-token-file` (hosts outside
//!   Kubernetes, `install.sh`).
//! - [`Authorizer::Open`]: `--no-auth`, or the loopback-only `demo`.
//!
//! [`layer`] wraps a handler: no token is 401 with `WWW-Authenticate: Bearer`, a token that
//! does not authenticate 401, an authenticated caller without the right 403.

pub(crate) mod delegated;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::http::{Handler, Request, Response};

pub use delegated::Delegated;

/// The audience of the tokens the master sends to minions. A minion accepts only tokens
/// made for it, so a token a node sees cannot be used against the API server, and the
/// master's own service-account token never leaves the master.
pub const MINION_AUDIENCE: &str = "cluster-insight-minion";

/// What a master's path `P` is reviewed as: the non-resource URL `/cluster-insight` + `P`.
pub const MASTER_URL_PREFIX: &str = "/cluster-insight";
/// What a minion's path `P` is reviewed as: `/cluster-insight-minion` + `P`.
pub const MINION_URL_PREFIX: &str = "/cluster-insight-minion";

/// How callers are authorized.
pub enum Authorizer {
    /// Everyone may read.
    Open,
    /// Callers must present this token.
    Token(StaticToken),
    /// The API server decides.
    Delegated(Box<Delegated>),
}

/// What the authorizer says of one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    Allowed,
    /// No token, or one that does not authenticate (401).
    Unauthenticated(String),
    /// Authenticated, not allowed (403).
    Forbidden(String),
    /// The API server could not be asked (503: the caller may retry).
    Unavailable(String),
}

impl Authorizer {
    pub fn describe(&self) -> String {
        match self {
            Authorizer::Open => "none: every caller may read".to_string(),
            Authorizer::Token(t) => format!("bearer token of {}", t.file.display()),
            Authorizer::Delegated(d) => d.describe(),
        }
    }

    /// Whether `token` (the bearer token of the request, if any) may `get` `path`.
    pub fn decide(&self, token: Option<&str>, path: &str) -> Decision {
        match self {
            Authorizer::Open => Decision::Allowed,
            Authorizer::Token(expected) => match token {
                None => Decision::Unauthenticated("no bearer token".to_string()),
                Some(t) if expected.matches(t) => Decision::Allowed,
                Some(_) => Decision::Unauthenticated("the bearer token is not valid".to_string()),
            },
            Authorizer::Delegated(delegated) => match token {
                None => Decision::Unauthenticated("no bearer token".to_string()),
                Some(t) => delegated.decide(t, path),
            },
        }
    }
}

/// A token read from a file at start-up.
pub struct StaticToken {
    file: PathBuf,
    value: String,
}

impl std::fmt::Debug for StaticToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the value.
        write!(f, "StaticToken({})", self.file.display())
    }
}

impl StaticToken {
    /// Reads the token of `file`; an empty or unreadable file is an error (the flag asked
    /// for authorization, and there would be none).
    pub fn read(file: &Path) -> Result<StaticToken, String> {
        let text = std::fs::read_to_string(file)
            .map_err(|e| format!("--auth-token-file {}: {e}", file.display()))?;
        let value = text.trim().to_string();
        if value.is_empty() {
            return Err(format!(
                "--auth-token-file {}: the file is empty",
                file.display()
            ));
        }
        if !value.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(format!(
                "--auth-token-file {}: a token is visible ASCII without spaces",
                file.display()
            ));
        }
        Ok(StaticToken {
            file: file.to_path_buf(),
            value,
        })
    }

    pub fn value(&self) -> &str {
        &self.value
    }

    /// Compares in time that depends on the length only, not on where the first
    /// difference is.
    fn matches(&self, given: &str) -> bool {
        let (a, b) = (self.value.as_bytes(), given.as_bytes());
        a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
    }
}

/// The bearer token of `request`, if it has one.
pub(crate) fn bearer(request: &Request) -> Option<&str> {
    let value = request.header("Authorization")?.trim();
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|t| !t.is_empty())
}

/// Paths every caller may read: the probes of the kubelet, which sends no token.
pub(crate) const OPEN_PATHS: &[&str] = &["/healthz", "/readyz"];

/// The header on every refusal of the authorization layer, so that a master tells a
/// minion that refused its token from an older minion that does not serve a path.
pub const REFUSED_BY: &str = "X-Cluster-Insight-Refused";

/// A bearer token longer than this is refused unread: no real token is near it, and the
/// caches below would hold whatever they are given.
const MAX_TOKEN: usize = 4096;

/// The path as the routes serve it: percent-decoded, without a trailing slash. Access is
/// checked on this form, so that no other spelling of a path reaches what a grant of a
/// prefix did not name. `None` for a path that does not decode (the routes refuse it).
fn served_form(path: &str) -> Option<String> {
    let decoded = cluster_insight_wire::percent::decode_utf8(path)?;
    let trimmed = if decoded.len() > 1 {
        decoded.trim_end_matches('/')
    } else {
        &decoded
    };
    Some(if trimmed.is_empty() { "/" } else { trimmed }.to_string())
}

/// Wraps `inner`: requests for [`OPEN_PATHS`] and the paths `also_open` names (the
/// master's map files, which hold no cluster data) pass, the rest only when `authorizer`
/// allows.
pub(crate) fn layer(
    authorizer: Arc<Authorizer>,
    also_open: fn(&str) -> bool,
    inner: Handler,
) -> Handler {
    if matches!(*authorizer, Authorizer::Open) {
        return inner;
    }
    Arc::new(move |request: &Request| {
        let Some(path) = served_form(request.path()) else {
            return Response::error(400, "the request path has a malformed percent-encoding");
        };
        if OPEN_PATHS.contains(&path.as_str()) || also_open(&path) {
            return inner(request);
        }
        let decision = match bearer(request) {
            Some(token) if token.len() > MAX_TOKEN => {
                Decision::Unauthenticated(format!("a bearer token of over {MAX_TOKEN} bytes"))
            }
            token => authorizer.decide(token, &path),
        };
        let refused = match decision {
            Decision::Allowed => return inner(request),
            Decision::Unauthenticated(why) => Response::error(401, &format!("unauthorized: {why}"))
                .with_header("WWW-Authenticate", "Bearer"),
            Decision::Forbidden(why) => Response::error(403, &format!("forbidden: {why}")),
            Decision::Unavailable(why) => {
                Response::error(503, &format!("cannot check authorization now: {why}"))
                    .with_header("Retry-After", "2")
            }
        };
        refused.with_header(REFUSED_BY, "authorization")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request_with(authorization: Option<&str>, target: &str) -> Request {
        let mut request = Request::get(target);
        if let Some(value) = authorization {
            request
                .headers
                .push(("Authorization".to_string(), value.to_string()));
        }
        request
    }

    fn static_token(value: &str) -> Authorizer {
        Authorizer::Token(StaticToken {
            file: PathBuf::from("/t"),
            value: value.to_string(),
        })
    }

    #[test]
    fn bearer_tokens_are_read_from_the_header() {
        let token = |v| bearer(&request_with(v, "/")).map(str::to_string);
        assert_eq!(token(Some("Bearer abc")), Some("abc".to_string()));
        assert_eq!(token(Some("bearer  abc ")), Some("abc".to_string()));
        assert_eq!(token(Some("Basic abc")), None);
        assert_eq!(token(Some("Bearer ")), None);
        assert_eq!(token(Some("Bearer")), None);
        assert_eq!(token(None), None);
    }

    #[test]
    fn a_static_token_lets_in_its_holder_only() {
        let auth = Arc::new(static_token("s3cret"));
        let handler = layer(
            auth,
            |path| path == "/open",
            Arc::new(|_: &Request| Response::error(200, "the answer")),
        );
        let status = |v, target| handler(&request_with(v, target)).status;
        assert_eq!(status(None, "/cluster"), 401);
        assert_eq!(status(Some("Bearer s3cre"), "/cluster"), 401);
        assert_eq!(status(Some("Bearer s3cret!"), "/cluster"), 401);
        assert_eq!(status(Some("Bearer s3cret"), "/cluster"), 200);
        // The probes need no token.
        assert_eq!(status(None, "/healthz"), 200);
        assert_eq!(status(None, "/readyz"), 200);
        // And what the caller of the layer opens; no more.
        assert_eq!(status(None, "/open"), 200);
        assert_eq!(status(None, "/open/more"), 401);
        assert_eq!(status(None, "/healthz/x"), 401);
        // Other spellings of a probe's path are the probe; of another path, that path.
        assert_eq!(status(None, "/healthz/"), 200);
        assert_eq!(status(None, "/%68ealthz"), 200);
        assert_eq!(status(None, "/%ZZ"), 400);
        let refused = handler(&request_with(None, "/status"));
        assert_eq!(refused.header("WWW-Authenticate"), Some("Bearer"));
        assert_eq!(refused.header(REFUSED_BY), Some("authorization"));
        let long = format!("Bearer {}", "s".repeat(MAX_TOKEN + 1));
        assert_eq!(status(Some(&long), "/cluster"), 401);
    }

    #[test]
    fn access_is_checked_on_the_path_as_served() {
        assert_eq!(served_form("/cluster/").as_deref(), Some("/cluster"));
        assert_eq!(served_form("/cluster%2F").as_deref(), Some("/cluster"));
        assert_eq!(served_form("/%63luster").as_deref(), Some("/cluster"));
        assert_eq!(served_form("/").as_deref(), Some("/"));
        assert_eq!(served_form("//").as_deref(), Some("/"));
        assert_eq!(served_form("/a%ZZ"), None);
    }

    #[test]
    fn token_files_must_hold_a_token() {
        let dir = std::env::temp_dir().join(format!("ci-auth-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("token");
        std::fs::write(&file, "  abc-123\n").unwrap();
        assert_eq!(StaticToken::read(&file).unwrap().value(), "abc-123");
        std::fs::write(&file, "\n").unwrap();
        assert!(StaticToken::read(&file).unwrap_err().contains("empty"));
        std::fs::write(&file, "two words").unwrap();
        assert!(StaticToken::read(&file).is_err());
        assert!(StaticToken::read(&dir.join("missing")).is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
