//! Who the simulated API server knows, and what they may read: the `TokenReview` and
//! `SubjectAccessReview` a master or minion delegates its callers' authorization to.
//!
//! Tokens are given by the test ([`crate::Simulator::add_token`]), each for a user with
//! groups and the audiences it was made for (none: the API server's own). Grants are
//! `(subject, non-resource URL pattern)` pairs ([`crate::Simulator::grant`]), a subject
//! being a user or a group, a pattern matching as RBAC's `nonResourceURLs` do: exactly, or
//! by prefix when it ends in `*`. Only `get` is ever granted.

use std::collections::HashMap;

use serde_json::{json, Value};

/// A token's owner.
#[derive(Debug, Clone)]
pub(crate) struct TokenOwner {
    pub user: String,
    pub groups: Vec<String>,
    /// What the token was made for; empty: the API server itself.
    pub audiences: Vec<String>,
}

#[derive(Debug, Default)]
pub(crate) struct Access {
    pub tokens: HashMap<String, TokenOwner>,
    pub grants: Vec<(String, String)>,
}

impl Access {
    /// The answer to a `TokenReview` of `body`.
    pub(crate) fn review_token(&self, body: &Value) -> Value {
        let spec = &body["spec"];
        let token = spec["token"].as_str().unwrap_or_default();
        let wanted = strings(&spec["audiences"]);
        let owner = self.tokens.get(token).filter(|owner| {
            if wanted.is_empty() {
                owner.audiences.is_empty()
            } else {
                owner.audiences.iter().any(|a| wanted.contains(&a.as_str()))
            }
        });
        let status = match owner {
            Some(owner) => json!({
                "authenticated": true,
                "user": {
                    "username": owner.user,
                    "uid": format!("uid-{}", owner.user),
                    "groups": owner.groups,
                },
                "audiences": if wanted.is_empty() { owner.audiences.clone() } else {
                    wanted.iter().map(|a| a.to_string()).collect()
                },
            }),
            None => json!({ "authenticated": false, "error": "invalid bearer token" }),
        };
        json!({
            "apiVersion": "authentication.k8s.io/v1",
            "kind": "TokenReview",
            "spec": {},
            "status": status,
        })
    }

    /// The answer to a `SubjectAccessReview` of `body`.
    pub(crate) fn review_access(&self, body: &Value) -> Value {
        let spec = &body["spec"];
        let user = spec["user"].as_str().unwrap_or_default();
        let groups = strings(&spec["groups"]);
        let path = spec["nonResourceAttributes"]["path"]
            .as_str()
            .unwrap_or_default();
        let verb = spec["nonResourceAttributes"]["verb"]
            .as_str()
            .unwrap_or_default();
        let allowed = verb == "get"
            && self.grants.iter().any(|(subject, pattern)| {
                (subject == user || groups.contains(&subject.as_str())) && matches(pattern, path)
            });
        let status = if allowed {
            json!({ "allowed": true, "reason": "granted by the simulator" })
        } else {
            json!({ "allowed": false })
        };
        json!({
            "apiVersion": "authorization.k8s.io/v1",
            "kind": "SubjectAccessReview",
            "status": status,
        })
    }
}

/// The strings of a JSON array; none for anything else.
fn strings(value: &Value) -> Vec<&str> {
    value
        .as_array()
        .map(|items| items.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default()
}

/// RBAC's `nonResourceURLs` matching: exact, or a prefix ending in `*`.
fn matches(pattern: &str, path: &str) -> bool {
    match pattern.strip_suffix('*') {
        Some(prefix) => path.starts_with(prefix),
        None => pattern == path,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reviews_follow_tokens_audiences_and_grants() {
        let mut access = Access::default();
        access.tokens.insert(
            "t1".into(),
            TokenOwner {
                user: "ann".into(),
                groups: vec!["readers".into()],
                audiences: vec![],
            },
        );
        access.tokens.insert(
            "t2".into(),
            TokenOwner {
                user: "master".into(),
                groups: vec![],
                audiences: vec!["minions".into()],
            },
        );
        access.grants.push(("readers".into(), "/cluster*".into()));
        let token = |t: &str, audiences: Value| {
            access.review_token(&json!({"spec": {"token": t, "audiences": audiences}}))["status"]
                ["authenticated"]
                .as_bool()
                .unwrap()
        };
        assert!(token("t1", json!(null)));
        assert!(!token("t1", json!(["minions"])));
        assert!(!token("t2", json!(null)));
        assert!(token("t2", json!(["minions"])));
        assert!(!token("nope", json!(null)));
        let may = |user: &str, groups: Value, path: &str, verb: &str| {
            access.review_access(&json!({"spec": {"user": user, "groups": groups,
                "nonResourceAttributes": {"path": path, "verb": verb}}}))["status"]["allowed"]
                .as_bool()
                .unwrap()
        };
        assert!(may("ann", json!(["readers"]), "/cluster/resources", "get"));
        assert!(!may(
            "ann",
            json!(["readers"]),
            "/cluster/resources",
            "post"
        ));
        assert!(!may("ann", json!([]), "/cluster", "get"));
        assert!(!may("ann", json!(["readers"]), "/status", "get"));
        assert!(matches("/node", "/node") && !matches("/node", "/node/x"));
    }
}
