//! Authorization delegated to the API server: `TokenReview` (who is this token?) and
//! `SubjectAccessReview` (may they `get` this non-resource URL?), each answer cached for a
//! while so that a client polling every second costs the API server nothing after its first
//! request. Kubelet caches the same answers for 2 minutes (identities) and 5 minutes
//! (decisions); a minute is short enough here for a removed binding to take effect soon.
//!
//! The URL reviewed is the request's path under a prefix of our own (`/cluster-insight`,
//! `/cluster-insight-minion`): non-resource URLs are cluster-wide, and a role granting
//! `/metrics` or `/version` as such would grant the API server's own too.
//!
//! An API server that cannot be asked is not asked again for a second: while it is down,
//! requests are refused at once (503) instead of each holding a worker for the review's
//! timeout.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use serde::Deserialize;

use super::Decision;
use crate::collect::kube::KubeClient;
use crate::report::chain;

/// How long an answer of the API server is reused.
const KNOWN_FOR: Duration = Duration::from_secs(60);
/// A refusal is reused for less: a binding just made should work soon.
const REFUSED_FOR: Duration = Duration::from_secs(10);
/// Entries kept per cache; when full it starts over, so that random tokens (at most 4 KiB
/// each, `super::MAX_TOKEN`) hold at most 16 MiB.
const MAX_CACHED: usize = 4096;
/// Paths longer than this are not sent to the API server.
const MAX_PATH: usize = 2048;
/// After a review fails for want of an answer, others are not tried for this long.
const BACK_OFF: Duration = Duration::from_secs(1);

const TOKEN_REVIEWS: &str = "/apis/authentication.k8s.io/v1/tokenreviews";
const ACCESS_REVIEWS: &str = "/apis/authorization.k8s.io/v1/subjectaccessreviews";

/// A review as the API server answers it: what matters is its status.
#[derive(Deserialize)]
struct Review<S> {
    #[serde(default)]
    status: S,
}

/// Who a token is, as a `TokenReview` said.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Deserialize)]
struct Identity {
    username: String,
    #[serde(default)]
    uid: String,
    #[serde(default)]
    groups: Vec<String>,
    #[serde(default)]
    extra: std::collections::BTreeMap<String, Vec<String>>,
}

struct Cache<K, V> {
    entries: Mutex<HashMap<K, (V, Instant)>>,
}

impl<K: std::hash::Hash + Eq, V: Clone> Cache<K, V> {
    fn new() -> Self {
        Cache {
            entries: Mutex::new(HashMap::new()),
        }
    }

    fn get(&self, key: &K) -> Option<V> {
        let entries = self.entries.lock();
        let (value, until) = entries.get(key)?;
        (Instant::now() < *until).then(|| value.clone())
    }

    fn put(&self, key: K, value: V, ttl: Duration) {
        let mut entries = self.entries.lock();
        if entries.len() >= MAX_CACHED {
            entries.clear();
        }
        entries.insert(key, (value, Instant::now() + ttl));
    }
}

/// Asks the API server, through `kube`, whose credentials must allow creating
/// `tokenreviews` and `subjectaccessreviews`.
pub struct Delegated {
    kube: KubeClient,
    /// The audience tokens must be made for; `None`: the API server's own.
    audience: Option<&'static str>,
    /// Put before a request's path to make the non-resource URL reviewed.
    url_prefix: &'static str,
    /// Until when the API server is not asked, after it could not be.
    unavailable: Mutex<Option<(Instant, String)>>,
    identities: Cache<String, Result<Identity, String>>,
    decisions: Cache<(Identity, String), Decision>,
}

impl Delegated {
    pub fn new(
        kube: KubeClient,
        audience: Option<&'static str>,
        url_prefix: &'static str,
    ) -> Delegated {
        Delegated {
            kube,
            audience,
            url_prefix,
            unavailable: Mutex::new(None),
            identities: Cache::new(),
            decisions: Cache::new(),
        }
    }

    pub(crate) fn describe(&self) -> String {
        match self.audience {
            Some(audience) => format!(
                "delegated to the API server at {} (tokens for audience {audience})",
                self.kube.base_url()
            ),
            None => format!("delegated to the API server at {}", self.kube.base_url()),
        }
    }

    /// Whether the API server was found unreachable within the last [`BACK_OFF`].
    fn backing_off(&self) -> Option<String> {
        let unavailable = self.unavailable.lock();
        let (until, why) = unavailable.as_ref()?;
        (Instant::now() < *until).then(|| why.clone())
    }

    fn unreachable(&self, why: String) -> Decision {
        *self.unavailable.lock() = Some((Instant::now() + BACK_OFF, why.clone()));
        Decision::Unavailable(why)
    }

    pub(crate) fn decide(&self, token: &str, path: &str) -> Decision {
        let identity = match self.identities.get(&token.to_string()) {
            Some(known) => known,
            None => {
                if let Some(why) = self.backing_off() {
                    return Decision::Unavailable(why);
                }
                match self.review_token(token) {
                    Ok(identity) => {
                        let ttl = if identity.is_ok() {
                            KNOWN_FOR
                        } else {
                            REFUSED_FOR
                        };
                        self.identities
                            .put(token.to_string(), identity.clone(), ttl);
                        identity
                    }
                    Err(e) => return self.unreachable(e),
                }
            }
        };
        let identity = match identity {
            Ok(identity) => identity,
            Err(why) => return Decision::Unauthenticated(why),
        };
        if path.len() > MAX_PATH {
            return Decision::Forbidden(format!("a path of {} bytes is not reviewed", path.len()));
        }
        let key = (identity, path.to_string());
        if let Some(known) = self.decisions.get(&key) {
            return known;
        }
        if let Some(why) = self.backing_off() {
            return Decision::Unavailable(why);
        }
        match self.review_access(&key.0, path) {
            Ok(decision) => {
                let ttl = if decision == Decision::Allowed {
                    KNOWN_FOR
                } else {
                    REFUSED_FOR
                };
                self.decisions.put(key, decision.clone(), ttl);
                decision
            }
            Err(e) => self.unreachable(e),
        }
    }

    /// `Ok(Err(why))` when the API server says the token does not authenticate; `Err` when
    /// it could not be asked.
    fn review_token(&self, token: &str) -> Result<Result<Identity, String>, String> {
        let mut spec = serde_json::json!({ "token": token });
        if let Some(audience) = self.audience {
            spec["audiences"] = serde_json::json!([audience]);
        }
        let body = serde_json::json!({
            "apiVersion": "authentication.k8s.io/v1",
            "kind": "TokenReview",
            "spec": spec,
        });
        let answer = self
            .kube
            .post_json(TOKEN_REVIEWS, &body.to_string(), Some(token))
            .map_err(|e| format!("TokenReview: {}", chain(&e)))?;
        #[derive(Deserialize, Default)]
        struct ReviewStatus {
            #[serde(default)]
            authenticated: bool,
            user: Option<Identity>,
            #[serde(default)]
            error: String,
        }
        let review: Review<ReviewStatus> = serde_json::from_str(&answer)
            .map_err(|e| format!("TokenReview: a malformed answer: {e}"))?;
        Ok(match (review.status.authenticated, review.status.user) {
            (true, Some(user)) => Ok(user),
            _ if review.status.error.is_empty() => Err("the token is not valid".to_string()),
            _ => Err(format!("the token is not valid: {}", review.status.error)),
        })
    }

    fn review_access(&self, who: &Identity, path: &str) -> Result<Decision, String> {
        let url = format!("{}{path}", self.url_prefix);
        let body = serde_json::json!({
            "apiVersion": "authorization.k8s.io/v1",
            "kind": "SubjectAccessReview",
            "spec": {
                "user": who.username,
                "uid": who.uid,
                "groups": who.groups,
                "extra": who.extra,
                "nonResourceAttributes": { "path": url, "verb": "get" },
            },
        });
        let answer = self
            .kube
            .post_json(ACCESS_REVIEWS, &body.to_string(), None)
            .map_err(|e| format!("SubjectAccessReview: {}", chain(&e)))?;
        #[derive(Deserialize, Default)]
        struct ReviewStatus {
            #[serde(default)]
            allowed: bool,
            #[serde(default)]
            reason: String,
        }
        let review: Review<ReviewStatus> = serde_json::from_str(&answer)
            .map_err(|e| format!("SubjectAccessReview: a malformed answer: {e}"))?;
        let refused = format!(
            "{} may not get {path} (the non-resource URL {url})",
            who.username
        );
        Ok(if review.status.allowed {
            Decision::Allowed
        } else if review.status.reason.is_empty() {
            Decision::Forbidden(refused)
        } else {
            Decision::Forbidden(format!("{refused}: {}", review.status.reason))
        })
    }
}
