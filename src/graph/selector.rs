//! Label selectors (`matchLabels` and `matchExpressions`, as `apps/v1` writes them; a
//! Service's or ReplicationController's plain map is `matchLabels` alone), and an index of
//! pods that answers a selector from its rarest label instead of testing every pod.

use std::collections::{BTreeMap, HashMap};

use serde::Deserialize;

use super::observed::KubeObject;

/// A label selector, evaluated as Kubernetes does: every `matchLabels` pair and every
/// requirement must hold. An empty selector matches everything; callers for which "no
/// selector" means "nothing" (Services) say so with an `Option`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LabelSelector {
    pub match_labels: BTreeMap<String, String>,
    pub match_expressions: Vec<Requirement>,
}

/// One `matchExpressions` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Requirement {
    pub key: String,
    pub operator: Operator,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Operator {
    In(Vec<String>),
    NotIn(Vec<String>),
    Exists,
    DoesNotExist,
}

impl LabelSelector {
    /// A selector of exactly these labels.
    pub fn from_labels(labels: BTreeMap<String, String>) -> LabelSelector {
        LabelSelector {
            match_labels: labels,
            match_expressions: Vec::new(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.match_labels.is_empty() && self.match_expressions.is_empty()
    }

    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        self.match_labels
            .iter()
            .all(|(k, v)| labels.get(k) == Some(v))
            && self.match_expressions.iter().all(|r| r.matches(labels))
    }
}

/// A selector that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SelectorError(pub String);

impl std::fmt::Display for SelectorError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "label selector: {}", self.0)
    }
}

impl std::error::Error for SelectorError {}

impl LabelSelector {
    /// A `metav1.LabelSelector` as the API writes it:
    /// `{"matchLabels": {...}, "matchExpressions": [{"key", "operator", "values"}]}`. An
    /// unknown operator, or values where the operator takes none (or none where it needs
    /// some), is an error: guessing would select pods the object does not.
    pub fn from_json(text: &str) -> Result<LabelSelector, SelectorError> {
        #[derive(Deserialize)]
        struct Raw {
            #[serde(default, rename = "matchLabels")]
            match_labels: Option<BTreeMap<String, String>>,
            #[serde(default, rename = "matchExpressions")]
            match_expressions: Option<Vec<RawRequirement>>,
        }
        #[derive(Deserialize)]
        struct RawRequirement {
            key: String,
            operator: String,
            #[serde(default)]
            values: Option<Vec<String>>,
        }
        // serde would also take a sequence for a struct; a selector is an object.
        if !text.trim_start().starts_with('{') {
            return Err(SelectorError("not a JSON object".to_string()));
        }
        let raw: Raw = serde_json::from_str(text).map_err(|e| SelectorError(e.to_string()))?;
        let mut match_expressions = Vec::new();
        for r in raw.match_expressions.unwrap_or_default() {
            let values = r.values.unwrap_or_default();
            let operator = match (r.operator.as_str(), values.is_empty()) {
                ("In", false) => Operator::In(values),
                ("NotIn", false) => Operator::NotIn(values),
                ("Exists", true) => Operator::Exists,
                ("DoesNotExist", true) => Operator::DoesNotExist,
                (op @ ("In" | "NotIn"), true) => {
                    return Err(SelectorError(format!("{op} needs values")))
                }
                (op @ ("Exists" | "DoesNotExist"), false) => {
                    return Err(SelectorError(format!("{op} takes no values")))
                }
                (op, _) => return Err(SelectorError(format!("unknown operator {op:?}"))),
            };
            match_expressions.push(Requirement {
                key: r.key,
                operator,
            });
        }
        Ok(LabelSelector {
            match_labels: raw.match_labels.unwrap_or_default(),
            match_expressions,
        })
    }
}

impl Requirement {
    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        let value = labels.get(&self.key);
        match &self.operator {
            Operator::In(values) => value.is_some_and(|v| values.contains(v)),
            // A pod without the label is not in any set, so it is "not in" this one.
            Operator::NotIn(values) => value.is_none_or(|v| !values.contains(v)),
            Operator::Exists => value.is_some(),
            Operator::DoesNotExist => value.is_none(),
        }
    }
}

/// Pods by namespace, and by namespace, label and value: a selector is answered from the
/// rarest of its `matchLabels` pairs (or its namespace when it has none), so the cost of a
/// selector grows with the pods it may match, not with all pods.
pub(super) struct SelectorIndex<'a> {
    postings: HashMap<(&'a str, &'a str, &'a str), Vec<usize>>,
    by_namespace: HashMap<&'a str, Vec<usize>>,
    pods: &'a [KubeObject],
}

impl<'a> SelectorIndex<'a> {
    /// Indexes the pods that `kept` says are in the graph.
    pub(super) fn new(pods: &'a [KubeObject], kept: impl Fn(usize) -> bool) -> SelectorIndex<'a> {
        let mut postings: HashMap<(&str, &str, &str), Vec<usize>> = HashMap::new();
        let mut by_namespace: HashMap<&str, Vec<usize>> = HashMap::new();
        for (i, pod) in pods.iter().enumerate() {
            if !kept(i) {
                continue;
            }
            let meta = &pod.meta;
            by_namespace.entry(&meta.namespace).or_default().push(i);
            for (k, v) in &meta.labels {
                postings
                    .entry((meta.namespace.as_str(), k.as_str(), v.as_str()))
                    .or_default()
                    .push(i);
            }
        }
        SelectorIndex {
            postings,
            by_namespace,
            pods,
        }
    }

    /// The pods of `namespace` that `selector` matches, in the order they were listed.
    pub(super) fn select(&self, namespace: &str, selector: &LabelSelector) -> Vec<usize> {
        let mut rarest: Option<&Vec<usize>> = None;
        for (k, v) in &selector.match_labels {
            match self.postings.get(&(namespace, k.as_str(), v.as_str())) {
                None => return Vec::new(),
                Some(list) if rarest.is_none_or(|r| list.len() < r.len()) => rarest = Some(list),
                Some(_) => {}
            }
        }
        let Some(candidates) = rarest.or_else(|| self.by_namespace.get(namespace)) else {
            return Vec::new();
        };
        candidates
            .iter()
            .copied()
            .filter(|&i| selector.matches(&self.pods[i].meta.labels))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn requirement(key: &str, operator: Operator) -> Requirement {
        Requirement {
            key: key.to_string(),
            operator,
        }
    }

    #[test]
    fn expressions_follow_kubernetes() {
        let web = labels(&[("app", "web"), ("tier", "front")]);
        let bare = labels(&[("app", "web")]);
        let values = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        for (operator, on_web, on_bare) in [
            (Operator::In(values(&["front", "back"])), true, false),
            (Operator::In(values(&["back"])), false, false),
            (Operator::NotIn(values(&["back"])), true, true),
            (Operator::NotIn(values(&["front"])), false, true),
            (Operator::Exists, true, false),
            (Operator::DoesNotExist, false, true),
        ] {
            let selector = LabelSelector {
                match_labels: labels(&[("app", "web")]),
                match_expressions: vec![requirement("tier", operator.clone())],
            };
            assert_eq!(selector.matches(&web), on_web, "{operator:?}");
            assert_eq!(selector.matches(&bare), on_bare, "{operator:?}");
        }
        assert!(LabelSelector::default().matches(&web));
        assert!(!LabelSelector::from_labels(labels(&[("app", "db")])).matches(&web));
    }

    #[test]
    fn selectors_are_read_as_the_api_writes_them() {
        let s = LabelSelector::from_json(
            r#"{"matchLabels":{"app":"web"},"matchExpressions":[
                {"key":"tier","operator":"In","values":["front","back"]},
                {"key":"canary","operator":"DoesNotExist"}]}"#,
        )
        .unwrap();
        assert!(s.matches(&labels(&[("app", "web"), ("tier", "front")])));
        assert!(!s.matches(&labels(&[
            ("app", "web"),
            ("tier", "front"),
            ("canary", "1")
        ])));
        assert!(!s.matches(&labels(&[("app", "web")])));
        assert!(LabelSelector::from_json("{}").unwrap().is_empty());
        for bad in [
            r#"{"matchExpressions":[{"key":"a","operator":"Near","values":["x"]}]}"#,
            r#"{"matchExpressions":[{"key":"a","operator":"In"}]}"#,
            r#"{"matchExpressions":[{"key":"a","operator":"Exists","values":["x"]}]}"#,
            r#"{"matchLabels":{"a":1}}"#,
            r#"[]"#,
        ] {
            assert!(LabelSelector::from_json(bad).is_err(), "{bad}");
        }
    }
}
