//! What changed between two graphs, and the way back: a graph as it was, from a later one and
//! the differences in between. The change feed and the history are built on these two; both
//! are pure, like the rest of `graph/`.
//!
//! A resource is the same resource when its ID is; a relation when its type, source and
//! target are. Either has *changed* when anything else about it has (for a relation, only its
//! timestamp can). Each difference keeps the values on both sides, so that it can be undone.

use std::collections::hash_map::Entry;

use super::id::IdMap;
use super::{Graph, Id, Relation, RelationType, Resource};

/// The differences from one graph to the next.
#[derive(Debug, Clone, Default)]
pub struct GraphDiff {
    /// In the new graph's order.
    pub added: Vec<Resource>,
    /// (before, after), in the new graph's order.
    pub changed: Vec<(Resource, Resource)>,
    /// In the old graph's order.
    pub removed: Vec<Resource>,
    pub relations_added: Vec<Relation>,
    pub relations_changed: Vec<(Relation, Relation)>,
    pub relations_removed: Vec<Relation>,
}

impl GraphDiff {
    pub fn is_empty(&self) -> bool {
        self.added.is_empty()
            && self.changed.is_empty()
            && self.removed.is_empty()
            && self.relations_added.is_empty()
            && self.relations_changed.is_empty()
            && self.relations_removed.is_empty()
    }
}

/// What identifies a relation.
type RelationKey<'a> = (RelationType, &'a Id, &'a Id);

fn key(relation: &Relation) -> RelationKey<'_> {
    (relation.kind, &relation.source, &relation.target)
}

/// The differences from `old` to `new`.
pub fn diff(old: &Graph, new: &Graph) -> GraphDiff {
    let mut out = GraphDiff::default();

    let mut before: IdMap<&Id, &Resource> = IdMap::default();
    before.reserve(old.resources.len());
    for r in &old.resources {
        before.insert(&r.id, r);
    }
    for r in &new.resources {
        match before.remove(&r.id) {
            None => out.added.push(r.clone()),
            Some(was) if was != r => out.changed.push((was.clone(), r.clone())),
            Some(_) => {}
        }
    }
    // What is left was not in the new graph; kept in the old graph's order.
    out.removed = old
        .resources
        .iter()
        .filter(|r| before.contains_key(&r.id))
        .cloned()
        .collect();

    let mut before: IdMap<RelationKey<'_>, &Relation> = IdMap::default();
    before.reserve(old.relations.len());
    for r in &old.relations {
        before.insert(key(r), r);
    }
    for r in &new.relations {
        match before.remove(&key(r)) {
            None => out.relations_added.push(r.clone()),
            Some(was) if was != r => out.relations_changed.push((was.clone(), r.clone())),
            Some(_) => {}
        }
    }
    out.relations_removed = old
        .relations
        .iter()
        .filter(|r| before.contains_key(&key(r)))
        .cloned()
        .collect();
    out
}

/// The graph as it was before `undone`, newest first, were applied to `current`: each
/// difference undone in turn. `timestamp_ms` is the time the result says it was built.
///
/// Resources stay grouped by type in the table's order; within a type, those still in the
/// current graph keep their order and those that came back follow.
pub fn rewind<'a>(
    current: &Graph,
    undone: impl IntoIterator<Item = &'a GraphDiff>,
    timestamp_ms: i64,
) -> Graph {
    // Slots in order; `None` for a resource or relation undone away.
    let mut resources: Vec<Option<Resource>> =
        current.resources.iter().cloned().map(Some).collect();
    let mut at: IdMap<Id, usize> = IdMap::default();
    at.reserve(resources.len());
    for (i, r) in current.resources.iter().enumerate() {
        at.insert(r.id.clone(), i);
    }
    let mut relations: Vec<Option<Relation>> =
        current.relations.iter().cloned().map(Some).collect();
    let mut rel_at: IdMap<(RelationType, Id, Id), usize> = IdMap::default();
    rel_at.reserve(relations.len());
    for (i, r) in current.relations.iter().enumerate() {
        rel_at.insert((r.kind, r.source.clone(), r.target.clone()), i);
    }

    for d in undone {
        for r in &d.added {
            if let Some(i) = at.remove(&r.id) {
                resources[i] = None;
            }
        }
        for (was, _) in &d.changed {
            put(&mut resources, &mut at, was.id.clone(), was.clone());
        }
        for was in &d.removed {
            put(&mut resources, &mut at, was.id.clone(), was.clone());
        }
        for r in &d.relations_added {
            if let Some(i) = rel_at.remove(&(r.kind, r.source.clone(), r.target.clone())) {
                relations[i] = None;
            }
        }
        for (was, _) in &d.relations_changed {
            let k = (was.kind, was.source.clone(), was.target.clone());
            put(&mut relations, &mut rel_at, k, was.clone());
        }
        for was in &d.relations_removed {
            let k = (was.kind, was.source.clone(), was.target.clone());
            put(&mut relations, &mut rel_at, k, was.clone());
        }
    }

    let mut resources: Vec<Resource> = resources.into_iter().flatten().collect();
    // Stable: within a type, the order they stood in.
    resources.sort_by_key(|r| r.kind);
    Graph {
        timestamp_ms,
        resources,
        relations: relations.into_iter().flatten().collect(),
    }
}

/// `graph` with `d` applied: the graph after it (the way forward, where [`rewind`] is the way
/// back). A removal or change of what `graph` does not hold, or an addition of what it
/// holds, is applied as far as it can be: the result holds what the later graph held.
pub fn apply(graph: &Graph, d: &GraphDiff, timestamp_ms: i64) -> Graph {
    apply_all(graph, [d], timestamp_ms)
}

/// `graph` with every diff of `diffs` applied in order, in one pass.
pub fn apply_all<'a>(
    graph: &Graph,
    diffs: impl IntoIterator<Item = &'a GraphDiff>,
    timestamp_ms: i64,
) -> Graph {
    // Undoing the inverse of a difference is applying it.
    let inverses: Vec<GraphDiff> = diffs.into_iter().map(inverse).collect();
    rewind(graph, &inverses, timestamp_ms)
}

fn inverse(d: &GraphDiff) -> GraphDiff {
    GraphDiff {
        added: d.removed.clone(),
        changed: d
            .changed
            .iter()
            .map(|(a, b)| (b.clone(), a.clone()))
            .collect(),
        removed: d.added.clone(),
        relations_added: d.relations_removed.clone(),
        relations_changed: d
            .relations_changed
            .iter()
            .map(|(a, b)| (b.clone(), a.clone()))
            .collect(),
        relations_removed: d.relations_added.clone(),
    }
}

/// Puts `value` in the slot its key has, or in a new one at the end.
fn put<K: std::hash::Hash + Eq, V>(
    slots: &mut Vec<Option<V>>,
    at: &mut IdMap<K, usize>,
    key: K,
    value: V,
) {
    match at.entry(key) {
        Entry::Occupied(e) => slots[*e.get()] = Some(value),
        Entry::Vacant(e) => {
            e.insert(slots.len());
            slots.push(Some(value));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::graph::Kind;

    fn resource(kind: &str, name: &str, ts: i64, text: &str) -> Resource {
        let kind = Kind::all().find(|k| k.name() == kind).unwrap();
        Resource {
            id: Id::new(format!("{}:{name}", kind.name())),
            kind,
            timestamp_ms: ts,
            properties: text.into(),
            label: name.into(),
            alternate_label: None,
            source: None,
            stale_since_ms: None,
        }
    }

    fn relation(kind: RelationType, from: &Resource, to: &Resource, ts: i64) -> Relation {
        Relation {
            kind,
            source: from.id.clone(),
            target: to.id.clone(),
            timestamp_ms: ts,
        }
    }

    fn graph(ts: i64, resources: Vec<Resource>, relations: Vec<Relation>) -> Graph {
        Graph {
            timestamp_ms: ts,
            resources,
            relations,
        }
    }

    #[test]
    fn differences_name_both_sides_and_undo_exactly() {
        let node = resource("Node", "n1", 1, "{}");
        let a = resource("Pod", "default/a", 1, r#"{"phase":"Pending"}"#);
        let a2 = resource("Pod", "default/a", 2, r#"{"phase":"Running"}"#);
        let b = resource("Pod", "default/b", 1, "{}");
        let c = resource("Pod", "default/c", 2, "{}");
        let old = graph(
            1,
            vec![node.clone(), a.clone(), b.clone()],
            vec![
                relation(RelationType::Runs, &node, &a, 1),
                relation(RelationType::Runs, &node, &b, 1),
            ],
        );
        let new = graph(
            2,
            vec![node.clone(), a2.clone(), c.clone()],
            vec![
                relation(RelationType::Runs, &node, &a, 2),
                relation(RelationType::Runs, &node, &c, 2),
            ],
        );
        let d = diff(&old, &new);
        assert_eq!(d.added, vec![c.clone()]);
        assert_eq!(d.changed, vec![(a.clone(), a2.clone())]);
        assert_eq!(d.removed, vec![b.clone()]);
        assert_eq!(d.relations_added.len(), 1);
        assert_eq!(d.relations_changed.len(), 1);
        assert_eq!(d.relations_removed[0].target, b.id);
        assert!(diff(&new, &new).is_empty());

        let forward = apply(&old, &d, 2);
        assert_eq!(forward.resources, new.resources);
        assert_eq!(forward.relations.len(), new.relations.len());
        let back = rewind(&new, [&d], 1);
        assert_eq!(back.resources, old.resources);
        let mut got = back.relations.clone();
        let mut want = old.relations.clone();
        got.sort_by(|x, y| x.target.as_str().cmp(y.target.as_str()));
        want.sort_by(|x, y| x.target.as_str().cmp(y.target.as_str()));
        assert_eq!(got, want);
    }

    #[test]
    fn several_steps_undo_newest_first() {
        let a = resource("Pod", "default/a", 1, "1");
        let a2 = resource("Pod", "default/a", 2, "2");
        let a3 = resource("Pod", "default/a", 3, "3");
        let g1 = graph(1, vec![a.clone()], vec![]);
        let g2 = graph(2, vec![a2.clone()], vec![]);
        let g3 = graph(3, vec![a3.clone()], vec![]);
        let g4 = graph(4, vec![], vec![]);
        let (d2, d3, d4) = (diff(&g1, &g2), diff(&g2, &g3), diff(&g3, &g4));
        assert_eq!(rewind(&g4, [&d4], 3).resources, g3.resources);
        assert_eq!(rewind(&g4, [&d4, &d3, &d2], 1).resources, g1.resources);
        assert_eq!(rewind(&g4, [&d4, &d3, &d2], 1).timestamp_ms, 1);
    }
}
