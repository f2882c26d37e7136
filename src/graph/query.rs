//! Which resources and relations of a graph a query selects (contract §7): by namespace, by
//! type, by label selector, and the neighbourhood of one resource. Pure, like the rest of
//! `graph/`; the API parses the query and the snapshot composes the answer from the selection.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, OnceLock};

use serde::Deserialize;

use super::id::IdMap;
use super::selector::LabelSelector;
use super::{Graph, Id, Kind, RelationType, Resource};

/// A query; every part given must hold (an empty part holds for everything).
#[derive(Debug, Clone, Default)]
pub struct Query {
    /// The resource is in one of these namespaces (see [`GraphIndex::namespace`]).
    pub namespaces: Vec<String>,
    /// The resource is of one of these types.
    pub types: Vec<Kind>,
    /// The resource's Kubernetes labels match.
    pub selector: Option<LabelSelector>,
    /// The resource is within `depth` relations of this one, either way.
    pub around: Option<(Id, u32)>,
}

impl Query {
    pub fn is_empty(&self) -> bool {
        self.namespaces.is_empty()
            && self.types.is_empty()
            && self.selector.is_none()
            && self.around.is_none()
    }
}

/// What a query selected: indices into the graph's resources and relations, ascending.
/// A relation is selected when both its ends are.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Selection {
    pub resources: Vec<usize>,
    pub relations: Vec<usize>,
}

/// What queries of one graph need and no build computes: where each resource stands, each
/// resource's namespace, and (on the first label query) each object's labels.
#[derive(Debug)]
pub struct GraphIndex {
    /// What depends only on which resources and relations there are, and where: shared by
    /// the index of a graph that differs only in what its resources say.
    shape: Arc<Shape>,
    labels: OnceLock<Vec<Option<BTreeMap<String, String>>>>,
}

#[derive(Debug)]
struct Shape {
    by_id: IdMap<Id, usize>,
    namespaces: Vec<Option<usize>>,
    /// The namespace names `namespaces` points into.
    names: Vec<String>,
    /// By resource: the relations it is an end of, ascending.
    relations_of: OnceLock<Vec<Vec<usize>>>,
}

impl GraphIndex {
    pub fn of(graph: &Graph) -> GraphIndex {
        let mut by_id: IdMap<Id, usize> = IdMap::default();
        by_id.reserve(graph.resources.len());
        for (i, r) in graph.resources.iter().enumerate() {
            by_id.insert(r.id.clone(), i);
        }
        let mut names: Vec<String> = Vec::new();
        let mut name_at: BTreeMap<String, usize> = BTreeMap::new();
        let mut intern = |ns: &str| -> usize {
            *name_at.entry(ns.to_string()).or_insert_with(|| {
                names.push(ns.to_string());
                names.len() - 1
            })
        };
        // An object's own namespace: its ID says it (`Pod:NAMESPACE/NAME`), and a Namespace
        // is in itself.
        let mut namespaces: Vec<Option<usize>> = graph
            .resources
            .iter()
            .map(|r| own_namespace(r).map(&mut intern))
            .collect();
        // A container is in its pod's, a process in its container's: follow `contains`
        // down, twice (pod → container → process), in the graph's order of relations.
        for _ in 0..2 {
            for rel in &graph.relations {
                if rel.kind != RelationType::Contains {
                    continue;
                }
                let (Some(&from), Some(&to)) = (by_id.get(&rel.source), by_id.get(&rel.target))
                else {
                    continue;
                };
                let inherits = matches!(graph.resources[to].kind.name(), "Container" | "Process")
                    && matches!(graph.resources[from].kind.name(), "Pod" | "Container");
                if inherits && namespaces[to].is_none() {
                    namespaces[to] = namespaces[from];
                }
            }
        }
        GraphIndex {
            shape: Arc::new(Shape {
                by_id,
                namespaces,
                names,
                relations_of: OnceLock::new(),
            }),
            labels: OnceLock::new(),
        }
    }

    /// The index of a graph with the same resources and relations in the same places as
    /// this one's (only what resources say may differ): made at once, from this one.
    pub fn same_shape(&self) -> GraphIndex {
        GraphIndex {
            shape: Arc::clone(&self.shape),
            labels: OnceLock::new(),
        }
    }

    /// The relations the resource at `i` is an end of (indices, ascending).
    pub fn relations_of(&self, graph: &Graph, i: usize) -> &[usize] {
        let by_id = &self.shape.by_id;
        let all = self.shape.relations_of.get_or_init(|| {
            let mut all: Vec<Vec<usize>> = vec![Vec::new(); graph.resources.len()];
            for (j, rel) in graph.relations.iter().enumerate() {
                let ends = [by_id.get(&rel.source), by_id.get(&rel.target)];
                for &&end in ends.iter().flatten() {
                    if all[end].last() != Some(&j) {
                        all[end].push(j);
                    }
                }
            }
            all
        });
        all.get(i).map_or(&[], Vec::as_slice)
    }

    /// Where the resource with this ID stands in the graph.
    pub fn position(&self, id: &str) -> Option<usize> {
        self.shape.by_id.get(&Id::new(id.to_string())).copied()
    }

    /// The namespace of the resource at `i`: a namespaced object's own, a Namespace's
    /// name, a container's pod's, a process's container's; none for the rest.
    pub fn namespace(&self, i: usize) -> Option<&str> {
        let shape = &*self.shape;
        shape
            .namespaces
            .get(i)
            .copied()
            .flatten()
            .map(|n| shape.names[n].as_str())
    }

    fn labels(&self, graph: &Graph) -> &[Option<BTreeMap<String, String>>] {
        self.labels.get_or_init(|| {
            graph
                .resources
                .iter()
                .map(|r| r.kind.info().api.and_then(|_| labels_of(&r.properties)))
                .collect()
        })
    }

    /// What `query` selects of `graph` (the graph this index was made of).
    pub fn select(&self, graph: &Graph, query: &Query) -> Selection {
        let near = query
            .around
            .as_ref()
            .map(|(id, depth)| self.neighbourhood(graph, id, *depth));
        let labels = query.selector.as_ref().map(|_| self.labels(graph));
        let keep: Vec<bool> = graph
            .resources
            .iter()
            .enumerate()
            .map(|(i, r)| {
                near.as_ref().is_none_or(|near| near[i])
                    && (query.types.is_empty() || query.types.contains(&r.kind))
                    && (query.namespaces.is_empty()
                        || self
                            .namespace(i)
                            .is_some_and(|ns| query.namespaces.iter().any(|q| q == ns)))
                    && query.selector.as_ref().is_none_or(|s| {
                        labels
                            .and_then(|l| l[i].as_ref())
                            .is_some_and(|labels| s.matches(labels))
                    })
            })
            .collect();
        let resources = (0..keep.len()).filter(|&i| keep[i]).collect();
        let relations = graph
            .relations
            .iter()
            .enumerate()
            .filter(|(_, rel)| {
                let kept = |id: &Id| self.shape.by_id.get(id).is_some_and(|&i| keep[i]);
                kept(&rel.source) && kept(&rel.target)
            })
            .map(|(i, _)| i)
            .collect();
        Selection {
            resources,
            relations,
        }
    }

    /// Which resources are within `depth` relations of `id`, following relations either
    /// way (an unknown ID: none).
    fn neighbourhood(&self, graph: &Graph, id: &Id, depth: u32) -> Vec<bool> {
        let mut within = vec![false; graph.resources.len()];
        let Some(&start) = self.shape.by_id.get(id) else {
            return within;
        };
        within[start] = true;
        let mut queue = VecDeque::from([(start, 0u32)]);
        while let Some((at, d)) = queue.pop_front() {
            if d == depth {
                continue;
            }
            for &j in self.relations_of(graph, at) {
                let rel = &graph.relations[j];
                let other = if rel.source == graph.resources[at].id {
                    &rel.target
                } else {
                    &rel.source
                };
                if let Some(&next) = self.shape.by_id.get(other) {
                    if !within[next] {
                        within[next] = true;
                        queue.push_back((next, d + 1));
                    }
                }
            }
        }
        within
    }
}

/// The namespace an object's own ID names, or a Namespace's name.
fn own_namespace(r: &Resource) -> Option<&str> {
    if r.kind.name() == "Namespace" {
        return Some(r.id.split_once(':')?.1);
    }
    r.namespace()
}

/// `metadata.labels` of an object's text; none when it has none or cannot be read.
fn labels_of(properties: &str) -> Option<BTreeMap<String, String>> {
    #[derive(Deserialize)]
    struct Object {
        #[serde(default)]
        metadata: Option<Metadata>,
    }
    #[derive(Deserialize)]
    struct Metadata {
        #[serde(default)]
        labels: Option<BTreeMap<String, String>>,
    }
    let object: Object = serde_json::from_str(properties).ok()?;
    Some(object.metadata?.labels.unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::graph::Relation;

    fn resource(kind: &str, id: &str, properties: &str) -> Resource {
        let kind = Kind::all().find(|k| k.name() == kind).unwrap();
        Resource {
            id: Id::new(format!("{}:{id}", kind.name())),
            kind,
            timestamp_ms: 0,
            properties: properties.into(),
            label: id.into(),
            alternate_label: None,
            source: None,
            stale_since_ms: None,
        }
    }

    fn rel(kind: RelationType, graph: &Graph, from: usize, to: usize) -> Relation {
        Relation {
            kind,
            source: graph.resources[from].id.clone(),
            target: graph.resources[to].id.clone(),
            timestamp_ms: 0,
        }
    }

    /// node ─runs→ web-1 (a, app=web) ─contains→ c1 ─contains→ p1; db-1 (b, app=db);
    /// Namespace a.
    fn sample() -> Graph {
        let mut g = Graph {
            timestamp_ms: 0,
            resources: vec![
                resource("Node", "n1", "{}"),
                resource("Namespace", "a", r#"{"metadata":{"name":"a"}}"#),
                resource("Pod", "a/web-1", r#"{"metadata":{"labels":{"app":"web"}}}"#),
                resource("Pod", "b/db-1", r#"{"metadata":{"labels":{"app":"db"}}}"#),
                resource("Container", "c1", "{}"),
                resource("Process", "c1/1", "{}"),
            ],
            relations: Vec::new(),
        };
        g.relations = vec![
            rel(RelationType::Runs, &g, 0, 2),
            rel(RelationType::Contains, &g, 1, 2),
            rel(RelationType::Contains, &g, 2, 4),
            rel(RelationType::Contains, &g, 4, 5),
            rel(RelationType::Runs, &g, 0, 3),
        ];
        g
    }

    #[test]
    fn namespaces_reach_containers_and_processes() {
        let g = sample();
        let index = GraphIndex::of(&g);
        let ns: Vec<Option<&str>> = (0..6).map(|i| index.namespace(i)).collect();
        assert_eq!(
            ns,
            [None, Some("a"), Some("a"), Some("b"), Some("a"), Some("a")]
        );
        let q = Query {
            namespaces: vec!["a".into()],
            ..Query::default()
        };
        let s = index.select(&g, &q);
        assert_eq!(s.resources, [1, 2, 4, 5]);
        // Both ends selected: the namespace's, the pod's and the container's `contains`.
        assert_eq!(s.relations, [1, 2, 3]);
    }

    #[test]
    fn types_labels_and_neighbourhoods() {
        let g = sample();
        let index = GraphIndex::of(&g);
        let pods = Kind::from_type_name("pods").unwrap();
        let q = Query {
            types: vec![pods],
            selector: Some(LabelSelector::parse("app=db").unwrap()),
            ..Query::default()
        };
        assert_eq!(index.select(&g, &q).resources, [3]);
        let around = |depth| Query {
            around: Some((Id::new("Pod:a/web-1".into()), depth)),
            ..Query::default()
        };
        assert_eq!(index.select(&g, &around(0)).resources, [2]);
        assert_eq!(index.select(&g, &around(1)).resources, [0, 1, 2, 4]);
        assert_eq!(index.select(&g, &around(2)).resources, [0, 1, 2, 3, 4, 5]);
        let nowhere = Query {
            around: Some((Id::new("Pod:x/y".into()), 3)),
            ..Query::default()
        };
        assert!(index.select(&g, &nowhere).resources.is_empty());
        assert_eq!(index.position("Pod:b/db-1"), Some(3));
    }
}
