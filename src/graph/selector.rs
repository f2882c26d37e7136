//! Label selectors (`matchLabels` and `matchExpressions`, as `apps/v1` writes them; a
//! Service's or ReplicationController's plain map is `matchLabels` alone), and an index of
//! pods that answers a selector from its rarest label instead of testing every pod.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

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

impl LabelSelector {
    /// A selector in kubectl's syntax (`-l`, `labelSelector=`): requirements separated by
    /// commas, each `key`, `!key`, `key=value`, `key==value`, `key!=value`,
    /// `key in (v1,v2)` or `key notin (v1,v2)`. Keys and values are checked as label keys
    /// and values are, so a typo is an error rather than a selector that matches nothing.
    pub fn parse(text: &str) -> Result<LabelSelector, SelectorError> {
        let mut match_expressions = Vec::new();
        for part in split_top_level(text)? {
            let part = part.trim();
            if part.is_empty() {
                if text.trim().is_empty() {
                    continue;
                }
                return Err(SelectorError(format!("empty requirement in {text:?}")));
            }
            match_expressions.push(parse_requirement(part)?);
        }
        Ok(LabelSelector {
            match_labels: BTreeMap::new(),
            match_expressions,
        })
    }
}

/// Splits at the commas that are not inside `( )`.
fn split_top_level(text: &str) -> Result<Vec<&str>, SelectorError> {
    let mut parts = Vec::new();
    let (mut depth, mut start) = (0u32, 0);
    for (i, c) in text.char_indices() {
        match c {
            '(' if depth == 0 => depth = 1,
            '(' => return Err(SelectorError(format!("nested parentheses in {text:?}"))),
            ')' if depth == 1 => depth = 0,
            ')' => return Err(SelectorError(format!("unbalanced ')' in {text:?}"))),
            ',' if depth == 0 => {
                parts.push(&text[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    if depth != 0 {
        return Err(SelectorError(format!("unclosed '(' in {text:?}")));
    }
    parts.push(&text[start..]);
    Ok(parts)
}

fn parse_requirement(part: &str) -> Result<Requirement, SelectorError> {
    let requirement = |key: &str, operator| -> Result<Requirement, SelectorError> {
        Ok(Requirement {
            key: label_key(key.trim())?,
            operator,
        })
    };
    if let Some(key) = part.strip_prefix('!') {
        return requirement(key, Operator::DoesNotExist);
    }
    // `key in (…)` / `key notin (…)`: the key, a word, a parenthesised list.
    if let Some(open) = part.find('(') {
        let words: Vec<&str> = part[..open].split_whitespace().collect();
        let list = part[open..]
            .strip_prefix('(')
            .and_then(|rest| rest.strip_suffix(')'))
            .ok_or_else(|| SelectorError(format!("bad set in {part:?}")))?;
        let values = list
            .split(',')
            .map(|v| label_value(v.trim()))
            .collect::<Result<Vec<_>, _>>()?;
        return match words.as_slice() {
            [key, "in"] => requirement(key, Operator::In(values)),
            [key, "notin"] => requirement(key, Operator::NotIn(values)),
            _ => Err(SelectorError(format!(
                "expected `key in (…)` or `key notin (…)` in {part:?}"
            ))),
        };
    }
    if let Some((key, value)) = part.split_once("!=") {
        return requirement(key, Operator::NotIn(vec![label_value(value.trim())?]));
    }
    if let Some((key, value)) = part.split_once('=') {
        let value = value.strip_prefix('=').unwrap_or(value);
        return requirement(key, Operator::In(vec![label_value(value.trim())?]));
    }
    requirement(part, Operator::Exists)
}

/// A label key: an optional DNS prefix and `/`, then a name of at most 63 characters.
fn label_key(key: &str) -> Result<String, SelectorError> {
    let name = key.rsplit_once('/').map_or(key, |(prefix, name)| {
        if prefix.is_empty() || prefix.len() > 253 {
            ""
        } else {
            name
        }
    });
    if name.is_empty() || !label_chars(name) || key.contains(char::is_whitespace) {
        return Err(SelectorError(format!("invalid label key {key:?}")));
    }
    Ok(key.to_string())
}

/// A label value: empty, or up to 63 characters of `[A-Za-z0-9._-]` starting and ending
/// with an alphanumeric.
fn label_value(value: &str) -> Result<String, SelectorError> {
    if !value.is_empty() && !label_chars(value) {
        return Err(SelectorError(format!("invalid label value {value:?}")));
    }
    Ok(value.to_string())
}

fn label_chars(s: &str) -> bool {
    let edge = |c: Option<char>| c.is_some_and(|c| c.is_ascii_alphanumeric());
    s.len() <= 63
        && edge(s.chars().next())
        && edge(s.chars().last())
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
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
    pods: &'a [Arc<KubeObject>],
}

impl<'a> SelectorIndex<'a> {
    /// Indexes the pods that `kept` says are in the graph.
    pub(super) fn new(
        pods: &'a [Arc<KubeObject>],
        kept: impl Fn(usize) -> bool,
    ) -> SelectorIndex<'a> {
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

    #[test]
    fn kubectl_syntax() {
        let labels = |pairs: &[(&str, &str)]| -> BTreeMap<String, String> {
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        };
        let web = labels(&[("app", "web"), ("tier", "front"), ("example.com/team", "a")]);
        let db = labels(&[("app", "db")]);
        for (text, on_web, on_db) in [
            ("app=web", true, false),
            ("app==web", true, false),
            ("app!=web", false, true),
            ("app in (web, db)", true, true),
            ("app notin (web)", false, true),
            ("tier", true, false),
            ("!tier", false, true),
            ("app=web,tier=front", true, false),
            ("example.com/team=a", true, false),
            ("", true, true),
        ] {
            let s = LabelSelector::parse(text).unwrap_or_else(|e| panic!("{text}: {e}"));
            assert_eq!((s.matches(&web), s.matches(&db)), (on_web, on_db), "{text}");
        }
        for bad in [
            "app=",
            "=web",
            "app in (web",
            "app in web)",
            "app within (a)",
            "a b",
            "app=we b",
            "app=-web",
            ",app",
            "app in ((a))",
        ] {
            if bad == "app=" {
                // An empty value is allowed: it selects the label set to "".
                assert!(LabelSelector::parse(bad).is_ok());
                continue;
            }
            assert!(LabelSelector::parse(bad).is_err(), "{bad}");
        }
    }
}
