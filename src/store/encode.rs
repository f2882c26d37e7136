//! How graphs and changes are written in the store: JSON, with each resource's observed text
//! written as it is (never parsed and written again). Short keys: a checkpoint of a large
//! cluster holds hundreds of thousands of resources.
//!
//! A resource of a type this process does not know (an `--extra-kinds` kind not named yet, or
//! one no longer named) is left out when read, with the relations it is an end of.

use std::collections::HashSet;
use std::sync::Arc;

use serde::Deserialize;
use serde_json::value::RawValue;

use crate::graph::diff::GraphDiff;
use crate::graph::{Graph, Id, Kind, Relation, RelationType, Resource};
use crate::publish::changes::ChangeHead;
use crate::publish::snapshot::write_json_string;

/// A graph as stored: its time and its resources and relations.
pub(super) fn write_graph(out: &mut Vec<u8>, graph: &Graph) {
    out.extend_from_slice(format!("{{\"t\":{},\"r\":", graph.timestamp_ms).as_bytes());
    write_resources(out, &graph.resources);
    out.extend_from_slice(b",\"l\":");
    write_relations(out, &graph.relations);
    out.push(b'}');
}

pub(super) fn write_change(out: &mut Vec<u8>, head: ChangeHead, d: &GraphDiff) {
    out.extend_from_slice(
        format!(
            "{{\"s\":{},\"v\":{},\"vt\":{},\"t\":{},\"p\":{},\"a\":",
            head.sequence,
            head.previous,
            head.previous_timestamp_ms,
            head.timestamp_ms,
            head.published_ms
        )
        .as_bytes(),
    );
    write_resources(out, &d.added);
    out.extend_from_slice(b",\"c\":");
    write_list(out, &d.changed, |out, pair| {
        write_pair(out, pair, write_resource)
    });
    out.extend_from_slice(b",\"d\":");
    write_resources(out, &d.removed);
    out.extend_from_slice(b",\"la\":");
    write_relations(out, &d.relations_added);
    out.extend_from_slice(b",\"lc\":");
    write_list(out, &d.relations_changed, |out, pair| {
        write_pair(out, pair, write_relation)
    });
    out.extend_from_slice(b",\"ld\":");
    write_relations(out, &d.relations_removed);
    out.push(b'}');
}

fn write_resources(out: &mut Vec<u8>, resources: &[Resource]) {
    write_list(out, resources, write_resource);
}

/// `[before,after]`.
fn write_pair<T>(out: &mut Vec<u8>, (was, now): &(T, T), write: fn(&mut Vec<u8>, &T)) {
    out.push(b'[');
    write(out, was);
    out.push(b',');
    write(out, now);
    out.push(b']');
}

/// `[a,b,…]`, each item written by `write`.
fn write_list<T>(out: &mut Vec<u8>, items: &[T], write: fn(&mut Vec<u8>, &T)) {
    out.push(b'[');
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        write(out, item);
    }
    out.push(b']');
}

fn write_resource(out: &mut Vec<u8>, r: &Resource) {
    out.extend_from_slice(b"{\"i\":");
    write_json_string(out, &r.id);
    out.extend_from_slice(b",\"k\":");
    write_json_string(out, r.kind.name());
    out.extend_from_slice(format!(",\"t\":{},\"p\":", r.timestamp_ms).as_bytes());
    out.extend_from_slice(r.properties.as_bytes());
    out.extend_from_slice(b",\"l\":");
    write_json_string(out, &r.label);
    if let Some(alt) = &r.alternate_label {
        out.extend_from_slice(b",\"a\":");
        write_json_string(out, alt);
    }
    if let Some(source) = r.source {
        out.extend_from_slice(b",\"s\":");
        write_json_string(out, source);
    }
    if let Some(stale) = r.stale_since_ms {
        out.extend_from_slice(format!(",\"st\":{stale}").as_bytes());
    }
    out.push(b'}');
}

fn write_relations(out: &mut Vec<u8>, relations: &[Relation]) {
    write_list(out, relations, write_relation);
}

fn write_relation(out: &mut Vec<u8>, r: &Relation) {
    out.push(b'[');
    write_json_string(out, r.kind.as_str());
    out.push(b',');
    write_json_string(out, &r.source);
    out.push(b',');
    write_json_string(out, &r.target);
    out.extend_from_slice(format!(",{}]", r.timestamp_ms).as_bytes());
}

#[derive(Deserialize)]
struct StoredResource<'a> {
    i: String,
    k: String,
    t: i64,
    #[serde(borrow)]
    p: &'a RawValue,
    l: String,
    #[serde(default)]
    a: Option<String>,
    #[serde(default)]
    s: Option<String>,
    #[serde(default)]
    st: Option<i64>,
}

type StoredRelation = (String, String, String, i64);

#[derive(Deserialize)]
struct StoredGraph<'a> {
    t: i64,
    #[serde(borrow)]
    r: Vec<StoredResource<'a>>,
    l: Vec<StoredRelation>,
}

#[derive(Deserialize)]
struct StoredChange<'a> {
    s: u64,
    v: u64,
    vt: i64,
    t: i64,
    p: i64,
    #[serde(borrow)]
    a: Vec<StoredResource<'a>>,
    #[serde(borrow)]
    c: Vec<(StoredResource<'a>, StoredResource<'a>)>,
    #[serde(borrow)]
    d: Vec<StoredResource<'a>>,
    la: Vec<StoredRelation>,
    lc: Vec<(StoredRelation, StoredRelation)>,
    ld: Vec<StoredRelation>,
}

/// What is read back: resources and relations of types this process knows.
#[derive(Default)]
struct Reader {
    /// IDs left out, so that their relations are too.
    left_out: HashSet<String>,
}

impl Reader {
    fn resource(&mut self, r: StoredResource<'_>) -> Option<Resource> {
        let Some(kind) = Kind::all().find(|k| k.name() == r.k) else {
            self.left_out.insert(r.i);
            return None;
        };
        Some(Resource {
            id: Id::new(r.i),
            kind,
            timestamp_ms: r.t,
            properties: Arc::from(r.p.get()),
            label: r.l.into(),
            alternate_label: r.a.map(Into::into),
            // The one source the builder names.
            source: r.s.filter(|s| s == "kubernetes").map(|_| "kubernetes"),
            stale_since_ms: r.st,
        })
    }

    fn resources(&mut self, all: Vec<StoredResource<'_>>) -> Vec<Resource> {
        all.into_iter().filter_map(|r| self.resource(r)).collect()
    }

    fn relation(&self, (kind, source, target, t): StoredRelation) -> Option<Relation> {
        if self.left_out.contains(&source) || self.left_out.contains(&target) {
            return None;
        }
        Some(Relation {
            kind: RelationType::from_name(&kind)?,
            source: Id::new(source),
            target: Id::new(target),
            timestamp_ms: t,
        })
    }

    fn relations(&self, all: Vec<StoredRelation>) -> Vec<Relation> {
        all.into_iter().filter_map(|r| self.relation(r)).collect()
    }
}

pub(super) fn read_graph(bytes: &[u8]) -> Result<Graph, serde_json::Error> {
    let stored: StoredGraph<'_> = serde_json::from_slice(bytes)?;
    let mut reader = Reader::default();
    let resources = reader.resources(stored.r);
    Ok(Graph {
        timestamp_ms: stored.t,
        resources,
        relations: reader.relations(stored.l),
    })
}

pub(super) fn read_change(bytes: &[u8]) -> Result<(ChangeHead, GraphDiff), serde_json::Error> {
    let stored: StoredChange<'_> = serde_json::from_slice(bytes)?;
    let mut reader = Reader::default();
    let head = ChangeHead {
        sequence: stored.s,
        previous: stored.v,
        previous_timestamp_ms: stored.vt,
        timestamp_ms: stored.t,
        published_ms: stored.p,
    };
    let added = reader.resources(stored.a);
    let removed = reader.resources(stored.d);
    let mut changed = Vec::new();
    for (was, now) in stored.c {
        if let (Some(was), Some(now)) = (reader.resource(was), reader.resource(now)) {
            changed.push((was, now));
        }
    }
    let pair = |(was, now): (StoredRelation, StoredRelation)| {
        Some((reader.relation(was)?, reader.relation(now)?))
    };
    let relations_changed = stored.lc.into_iter().filter_map(pair).collect();
    Ok((
        head,
        GraphDiff {
            added,
            changed,
            removed,
            relations_added: reader.relations(stored.la),
            relations_changed,
            relations_removed: reader.relations(stored.ld),
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::graph::diff::diff;

    fn resource(kind: &str, name: &str, text: &str) -> Resource {
        Resource {
            id: Id::new(format!("{kind}:{name}")),
            kind: Kind::all().find(|k| k.name() == kind).unwrap(),
            timestamp_ms: 7,
            properties: text.into(),
            label: format!("\"{name}\"\n").into(),
            alternate_label: Some("alt".into()),
            source: Some("kubernetes"),
            stale_since_ms: Some(5),
        }
    }

    #[test]
    fn graphs_and_changes_read_back_as_written() {
        let a = resource("Pod", "default/a", r#"{"x": [1, 2, {"y": "z\n"}]}"#);
        let b = resource("Node", "n", "{}");
        let rel = Relation {
            kind: RelationType::Runs,
            source: b.id.clone(),
            target: a.id.clone(),
            timestamp_ms: 9,
        };
        let old = Graph {
            timestamp_ms: 11,
            resources: vec![b.clone(), a.clone()],
            relations: vec![rel.clone()],
        };
        let mut out = Vec::new();
        write_graph(&mut out, &old);
        let back = read_graph(&out).unwrap();
        assert_eq!(back.resources, old.resources);
        assert_eq!(back.relations, old.relations);
        assert_eq!(back.timestamp_ms, 11);

        let new = Graph {
            timestamp_ms: 12,
            resources: vec![resource("Node", "n", r#"{"v":2}"#)],
            relations: Vec::new(),
        };
        let d = diff(&old, &new);
        let head = ChangeHead {
            sequence: 3,
            previous: 2,
            previous_timestamp_ms: 11,
            timestamp_ms: 12,
            published_ms: 13,
        };
        let mut out = Vec::new();
        write_change(&mut out, head, &d);
        let (read_head, read) = read_change(&out).unwrap();
        assert_eq!(read_head, head);
        assert_eq!(read.changed, d.changed);
        assert_eq!(read.removed, d.removed);
        assert_eq!(read.relations_removed, d.relations_removed);
        assert!(read_change(b"{\"s\":1}").is_err());
        assert!(read_graph(b"not json").is_err());
    }
}
