//! A published snapshot: the graph of one refresh, its JSON written once; every body the API
//! serves (plain and gzip) is composed of those pieces on its first request, so that a
//! request costs a reference count and a copy. A snapshot of a graph made from the last one
//! is written only where the graph changed.
//!
//! Snapshots are immutable once built; the collector swaps a new one in (see [`super::Shared`])
//! and handlers clone the `Arc` of whichever one is current. No I/O and no clock here.

use std::collections::{BTreeMap, HashMap};
use std::ops::Range;
use std::sync::{Arc, OnceLock};

use super::dot::DotOptions;
use crate::graph::fingerprint::bytes_hash;
use crate::graph::query::{GraphIndex, Selection};
use crate::graph::update::Kept;
use crate::graph::{Graph, Id, Kind, Relation, Resource, RELATION_RULES};
use crate::http::{Body, Composed, Piece};
use cluster_insight_wire::time::rfc3339_millis;

/// One endpoint's body, with its entity tag. The gzip form is made on the first request
/// that asks for it, once per snapshot: compressing every body of a large cluster at every
/// refresh cost more than the rest of the refresh together, for clients that mostly never
/// ask.
#[derive(Debug)]
pub struct Rendered {
    pub(crate) content_type: &'static str,
    /// Plain: shares the observed objects' text with the graph instead of copying it.
    pub body: Body,
    gzip: OnceLock<Arc<[u8]>>,
    /// Strong tag of the plain body; the gzip body's tag adds `-gzip` inside the quotes.
    pub(crate) etag: String,
}

impl Rendered {
    pub(crate) fn new(content_type: &'static str, body: Body, etag_base: &str) -> Rendered {
        Rendered {
            content_type,
            body,
            gzip: OnceLock::new(),
            etag: format!("\"{etag_base}\""),
        }
    }

    /// The body gzipped; concurrent first callers wait for one compression.
    pub(crate) fn gzip(&self) -> Arc<[u8]> {
        Arc::clone(self.gzip.get_or_init(|| self.body.gzip().into()))
    }

    pub(crate) fn gzip_etag(&self) -> String {
        format!("{}-gzip\"", self.etag.trim_end_matches('"'))
    }
}

/// Counts of a graph, for `/status` and the logs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Counts {
    pub resources: BTreeMap<&'static str, usize>,
    pub relations: BTreeMap<&'static str, usize>,
}

#[derive(Debug)]
pub struct Snapshot {
    /// Increases by one with every snapshot the process publishes.
    pub(crate) sequence: u64,
    pub timestamp_ms: i64,
    /// The bodies of `/cluster`, `/cluster/resources` and each type's list, composed on
    /// their first request: a list of pieces per resource each, which a snapshot no one
    /// reads whole (most of those a busy cluster publishes) need not pay for.
    cluster: OnceLock<Rendered>,
    resources: OnceLock<Rendered>,
    /// Every type one can ask for on its own (the Cluster root is not one).
    by_type: BTreeMap<Kind, OnceLock<Rendered>>,
    /// The DOT rendering, made on the first request for `/debug` from `graph`.
    debug: OnceLock<Rendered>,
    /// The GraphML rendering, made on the first request for it.
    graphml: OnceLock<Rendered>,
    /// What every ETag of this snapshot starts with.
    tag: String,
    /// Its ETags are weak: a snapshot of an earlier time made again from the changes since
    /// has the same content as the one served then, not always the same bytes (resources
    /// that came back stand last of their type).
    weak: bool,
    /// The examples of the endpoints' page (`/api`), found on its first request.
    examples: OnceLock<Examples>,
    /// Where each resource stands, by ID; made on the first query that needs it.
    index: OnceLock<GraphIndex>,
    layout: Layout,
    pub(crate) graph: Graph,
    pub(crate) counts: Counts,
}

/// Bytes of one of a layout's glue buffers.
#[derive(Debug, Clone)]
struct Span {
    glue: usize,
    range: Range<usize>,
}

/// Where one resource's JSON lies: `prefix` in the glue, its properties text, `suffix` in
/// the same glue, followed there by a comma.
#[derive(Debug, Clone)]
struct Laid {
    prefix: Span,
    suffix: Span,
}

/// Where every byte of a snapshot's JSON bodies lies, kept so that any selection of its
/// resources and relations is a body made of the same pieces (the queries of contract §7).
#[derive(Debug)]
struct Layout {
    /// The first is written whole by [`render`]; each [`render_update`] adds one with what
    /// it wrote (and after [`MAX_GLUES`], gathers what is still used of those into one).
    glues: Vec<Arc<[u8]>>,
    /// `{"success":true,"timestamp":…,"sequence":…,"resources":[`
    head: Span,
    /// `],"relations":[`
    middle: Span,
    /// `]}`
    close: Span,
    /// By resource, in the graph's order.
    resources: Vec<Laid>,
    /// By relation, in the graph's order; each followed in its glue by a comma. Shared
    /// with the snapshot before when the relations are the same.
    relations: Arc<[Span]>,
}

/// Glue buffers a layout may have before the updates' are gathered into one.
const MAX_GLUES: usize = 32;

/// Serializes `graph` into every body. `created_by` is the `/version` string.
///
/// Every byte we generate (IDs, timestamps, annotations, relations) goes into one glue
/// buffer, written once; each resource's observed object stays where the collector put it.
/// The bodies are lists of pieces of those two.
pub fn render(graph: Graph, created_by: &str, sequence: u64) -> Snapshot {
    let mut writer = Writer::new(created_by);

    let mut glue: Vec<u8> =
        Vec::with_capacity(graph.resources.len() * 300 + graph.relations.len() * 200 + 256);
    let (head, middle, close) = frame(&mut glue, &mut writer, graph.timestamp_ms, sequence, 0);
    let relations = graph
        .relations
        .iter()
        .map(|rel| lay_relation(&mut glue, &mut writer, rel, 0))
        .collect();
    let resources = graph
        .resources
        .iter()
        .map(|r| lay(&mut glue, &mut writer, r, 0))
        .collect();
    let layout = Layout {
        glues: vec![glue.into()],
        head,
        middle,
        close,
        resources,
        relations,
    };
    let counts = Counts::of(&graph);
    Snapshot::new(graph, layout, counts, sequence)
}

/// The snapshot of `graph`, made from `previous`, whose graph it was made from: only what
/// `kept` does not keep of `previous` is written, into a glue buffer of its own; every
/// other piece is `previous`'s (and, when everything stayed in its place, its relations
/// and the shape of its query index too).
pub fn render_update(
    previous: &Snapshot,
    graph: Graph,
    kept: &Kept,
    created_by: &str,
    sequence: u64,
) -> Snapshot {
    let mut writer = Writer::new(created_by);
    let old = &previous.layout;
    let index = old.glues.len();
    let mut glue = Vec::with_capacity(256);
    let (head, middle, close) = frame(&mut glue, &mut writer, graph.timestamp_ms, sequence, index);
    let (resources, relations) = match kept {
        Kept::AllBut(changed) => {
            let mut resources = old.resources.clone();
            for &i in changed {
                resources[i] = lay(&mut glue, &mut writer, &graph.resources[i], index);
            }
            (resources, Arc::clone(&old.relations))
        }
        Kept::Moved {
            resources: from,
            relations: relations_from,
        } => {
            let resources = graph
                .resources
                .iter()
                .zip(from)
                .map(|(r, from)| match from {
                    Some(o) => old.resources[*o].clone(),
                    None => lay(&mut glue, &mut writer, r, index),
                })
                .collect();
            let relations = graph
                .relations
                .iter()
                .zip(relations_from)
                .map(|(rel, from)| match from {
                    Some(j) => old.relations[*j].clone(),
                    None => lay_relation(&mut glue, &mut writer, rel, index),
                })
                .collect();
            (resources, relations)
        }
    };
    let mut glues = old.glues.clone();
    glues.push(glue.into());
    let mut layout = Layout {
        glues,
        head,
        middle,
        close,
        resources,
        relations,
    };
    if layout.glues.len() > MAX_GLUES {
        layout.gather();
    }
    let counts = match kept {
        Kept::AllBut(_) => previous.counts.clone(),
        Kept::Moved { .. } => Counts::of(&graph),
    };
    let snapshot = Snapshot::new(graph, layout, counts, sequence);
    // The same resources and relations in the same places: the same index, but labels.
    if let (Kept::AllBut(_), Some(index)) = (kept, previous.index.get()) {
        let _ = snapshot.index.set(index.same_shape());
    }
    snapshot
}

/// Writes the frame of `/cluster`'s body into `glue` (the glue buffer `index`): its head,
/// the middle between resources and relations, and its close.
fn frame(
    glue: &mut Vec<u8>,
    writer: &mut Writer,
    timestamp_ms: i64,
    sequence: u64,
    index: usize,
) -> (Span, Span, Span) {
    let head = push_range(glue, |g| {
        g.extend_from_slice(b"{\"success\":true,\"timestamp\":\"");
        g.extend_from_slice(writer.stamp(timestamp_ms).as_bytes());
        g.extend_from_slice(format!("\",\"sequence\":{sequence},\"resources\":[").as_bytes());
    });
    let close = push_range(glue, |g| g.extend_from_slice(b"]}"));
    let middle = push_range(glue, |g| g.extend_from_slice(b"],\"relations\":["));
    let span = |range| Span { glue: index, range };
    (span(head), span(middle), span(close))
}

/// Writes a relation into `glue` (the glue buffer `index`), followed by a comma.
fn lay_relation(glue: &mut Vec<u8>, writer: &mut Writer, rel: &Relation, index: usize) -> Span {
    let range = push_range(glue, |g| writer.relation(g, rel));
    glue.push(b',');
    Span { glue: index, range }
}

/// Writes a resource's prefix and suffix into `glue` (the glue buffer `index`).
fn lay(glue: &mut Vec<u8>, writer: &mut Writer, r: &Resource, index: usize) -> Laid {
    let prefix = push_range(glue, |g| writer.resource_prefix(g, r));
    let suffix = push_range(glue, |g| writer.resource_suffix(g, r));
    // The separator sits right after the suffix, so that "suffix, comma, next prefix" is
    // one contiguous range of the glue.
    glue.push(b',');
    Laid {
        prefix: Span {
            glue: index,
            range: prefix,
        },
        suffix: Span {
            glue: index,
            range: suffix,
        },
    }
}

impl Counts {
    fn of(graph: &Graph) -> Counts {
        let mut counts = Counts::default();
        for r in &graph.resources {
            *counts.resources.entry(r.kind.name()).or_default() += 1;
        }
        for r in &graph.relations {
            *counts.relations.entry(r.kind.as_str()).or_default() += 1;
        }
        counts
    }
}

/// [`render`] for a snapshot of an earlier time, made again from the changes since: the
/// same sequence and time as when it was served, and weak ETags of the same names.
pub(crate) fn render_past(graph: Graph, created_by: &str, sequence: u64) -> Snapshot {
    let mut snapshot = render(graph, created_by, sequence);
    snapshot.weak = true;
    snapshot
}

impl Layout {
    /// The bytes of `span`.
    fn piece(&self, span: &Span) -> Piece {
        Piece::bytes_range(&self.glues[span.glue], span.range.clone())
    }

    /// The comma the glue holds right after `span`.
    fn comma_after(&self, span: &Span) -> Piece {
        let end = span.range.end;
        Piece::bytes_range(&self.glues[span.glue], end..end + 1)
    }

    /// Copies what is still used of the update's glue buffers (all but the first) into
    /// one, and lets the rest go.
    fn gather(&mut self) {
        let mut glue = Vec::new();
        let glues = std::mem::take(&mut self.glues);
        let mut moved = |span: &mut Span, with_comma: bool| {
            if span.glue == 0 {
                return;
            }
            let end = span.range.end + usize::from(with_comma);
            let start = glue.len();
            glue.extend_from_slice(&glues[span.glue][span.range.start..end]);
            *span = Span {
                glue: 1,
                range: start..start + span.range.len(),
            };
        };
        for laid in &mut self.resources {
            moved(&mut laid.prefix, false);
            moved(&mut laid.suffix, true);
        }
        for span in [&mut self.head, &mut self.middle, &mut self.close] {
            moved(span, false);
        }
        if self.relations.iter().any(|span| span.glue != 0) {
            let mut relations = self.relations.to_vec();
            for span in &mut relations {
                moved(span, true);
            }
            self.relations = relations.into();
        }
        self.glues = vec![Arc::clone(&glues[0]), glue.into()];
    }

    /// The body of the resources at `resources` (indices, ascending), with the relations at
    /// `relations` after them when given (`/cluster`'s form), else without (the lists').
    fn compose(
        &self,
        graph: &Graph,
        resources: impl IntoIterator<Item = usize>,
        relations: Option<impl IntoIterator<Item = usize>>,
    ) -> Body {
        let mut body = Composed::default();
        body.push(self.piece(&self.head));
        let mut previous: Option<&Laid> = None;
        for i in resources {
            let laid = &self.resources[i];
            if let Some(previous) = previous {
                body.push(self.comma_after(&previous.suffix));
            }
            previous = Some(laid);
            body.push(self.piece(&laid.prefix));
            body.push(Piece::text(&graph.resources[i].properties));
            body.push(self.piece(&laid.suffix));
        }
        if let Some(relations) = relations {
            body.push(self.piece(&self.middle));
            let mut previous: Option<&Span> = None;
            for i in relations {
                if let Some(previous) = previous {
                    body.push(self.comma_after(previous));
                }
                let span = &self.relations[i];
                body.push(self.piece(span));
                previous = Some(span);
            }
        }
        body.push(self.piece(&self.close));
        Body::Composed(Arc::new(body))
    }
}

/// Writes the JSON of resources and relations as every endpoint shows them (contract §2):
/// the snapshot's bodies and the change feed's documents alike.
pub(crate) struct Writer {
    /// RFC 3339 texts of the timestamps met so far: most resources of a steady cluster
    /// share a handful.
    stamps: HashMap<i64, String>,
    created_by: String,
}

impl Writer {
    pub(crate) fn new(created_by: &str) -> Writer {
        Writer {
            stamps: HashMap::new(),
            created_by: json_string(created_by),
        }
    }

    pub(crate) fn stamp(&mut self, ms: i64) -> &str {
        self.stamps.entry(ms).or_insert_with(|| rfc3339_millis(ms))
    }

    /// `{"id":…,"type":…,"timestamp":…,"properties":` — the properties text follows.
    pub(crate) fn resource_prefix(&mut self, g: &mut Vec<u8>, r: &Resource) {
        g.extend_from_slice(b"{\"id\":");
        write_json_string(g, &r.id);
        g.extend_from_slice(b",\"type\":\"");
        g.extend_from_slice(r.kind.name().as_bytes());
        g.extend_from_slice(b"\",\"timestamp\":\"");
        g.extend_from_slice(self.stamp(r.timestamp_ms).as_bytes());
        g.extend_from_slice(b"\",\"properties\":");
    }

    /// `,"annotations":{…}}` after the properties text.
    pub(crate) fn resource_suffix(&mut self, g: &mut Vec<u8>, r: &Resource) {
        g.extend_from_slice(b",\"annotations\":{\"label\":");
        write_json_string(g, &r.label);
        if let Some(alt) = &r.alternate_label {
            g.extend_from_slice(b",\"alternateLabel\":");
            write_json_string(g, alt);
        }
        if let Some(source) = r.source {
            g.extend_from_slice(b",\"source\":");
            write_json_string(g, source);
        }
        if let Some(read_ms) = r.stale_since_ms {
            g.extend_from_slice(b",\"staleSince\":\"");
            g.extend_from_slice(self.stamp(read_ms).as_bytes());
            g.push(b'"');
        }
        g.extend_from_slice(b",\"createdBy\":");
        g.extend_from_slice(self.created_by.as_bytes());
        g.extend_from_slice(b"}}");
    }

    pub(crate) fn relation(&mut self, g: &mut Vec<u8>, rel: &Relation) {
        g.extend_from_slice(b"{\"type\":\"");
        g.extend_from_slice(rel.kind.as_str().as_bytes());
        g.extend_from_slice(b"\",\"timestamp\":\"");
        g.extend_from_slice(self.stamp(rel.timestamp_ms).as_bytes());
        g.extend_from_slice(b"\",\"source\":");
        write_json_string(g, &rel.source);
        g.extend_from_slice(b",\"target\":");
        write_json_string(g, &rel.target);
        g.extend_from_slice(b",\"annotations\":{\"label\":\"");
        g.extend_from_slice(rel.kind.as_str().as_bytes());
        g.extend_from_slice(b"\",\"createdBy\":");
        g.extend_from_slice(self.created_by.as_bytes());
        g.extend_from_slice(b"}}");
    }
}

/// One resource of each type and one relation of each rule, to show what the graph holds.
#[derive(Debug, Default)]
pub(crate) struct Examples {
    /// The first resource of each type.
    pub(crate) resources: BTreeMap<Kind, Id>,
    /// By rule of [`RELATION_RULES`]: the first relation that fits it (source, target).
    pub(crate) relations: Vec<Option<(Id, Id)>>,
}

impl Examples {
    fn of(graph: &Graph) -> Examples {
        let mut resources = BTreeMap::new();
        for r in &graph.resources {
            resources.entry(r.kind).or_insert_with(|| r.id.clone());
        }
        let mut relations: Vec<Option<(Id, Id)>> = vec![None; RELATION_RULES.len()];
        fn type_of(id: &Id) -> &str {
            id.split(':').next().unwrap_or("")
        }
        for r in &graph.relations {
            if relations.iter().all(Option::is_some) {
                break;
            }
            let (from, to) = (type_of(&r.source), type_of(&r.target));
            for (rule, example) in RELATION_RULES.iter().zip(relations.iter_mut()) {
                if example.is_none() && rule.fits(r.kind, from, to) {
                    *example = Some((r.source.clone(), r.target.clone()));
                }
            }
        }
        Examples {
            resources,
            relations,
        }
    }
}

impl Snapshot {
    fn new(graph: Graph, layout: Layout, counts: Counts, sequence: u64) -> Snapshot {
        Snapshot {
            sequence,
            timestamp_ms: graph.timestamp_ms,
            cluster: OnceLock::new(),
            resources: OnceLock::new(),
            by_type: Kind::queryable().map(|k| (k, OnceLock::new())).collect(),
            debug: OnceLock::new(),
            graphml: OnceLock::new(),
            tag: format!("{sequence:x}-{:x}", graph.timestamp_ms),
            weak: false,
            examples: OnceLock::new(),
            index: OnceLock::new(),
            layout,
            counts,
            graph,
        }
    }

    /// How many types have a list of their own in this snapshot.
    pub(crate) fn types_served(&self) -> usize {
        self.by_type.len()
    }

    /// `/cluster`: every resource and relation.
    pub fn cluster(&self) -> &Rendered {
        self.cluster.get_or_init(|| {
            let all = 0..self.graph.resources.len();
            let relations = 0..self.graph.relations.len();
            let body = self.layout.compose(&self.graph, all, Some(relations));
            self.rendered(JSON, body, "cluster")
        })
    }

    /// `/cluster/resources`: every resource.
    pub fn resources(&self) -> &Rendered {
        self.resources.get_or_init(|| {
            let all = 0..self.graph.resources.len();
            let body = self.layout.compose(&self.graph, all, None::<Range<usize>>);
            self.rendered(JSON, body, "resources")
        })
    }

    /// The list of one type's resources; `None` for a type this snapshot does not serve
    /// (named since it was made).
    pub fn of_type(&self, kind: Kind) -> Option<&Rendered> {
        let cell = self.by_type.get(&kind)?;
        Some(cell.get_or_init(|| {
            // Resources are grouped by type, in the table's order.
            let resources = &self.graph.resources;
            let start = resources.partition_point(|r| r.kind < kind);
            let end = start + resources[start..].partition_point(|r| r.kind == kind);
            let body = self
                .layout
                .compose(&self.graph, start..end, None::<Range<usize>>);
            self.rendered(JSON, body, &kind.to_string())
        }))
    }

    /// One resource of each type and one relation of each rule, found on first use.
    pub(crate) fn examples(&self) -> &Examples {
        self.examples.get_or_init(|| Examples::of(&self.graph))
    }

    /// What queries of this snapshot's graph need, made on the first query.
    pub(crate) fn index(&self) -> &GraphIndex {
        self.index.get_or_init(|| GraphIndex::of(&self.graph))
    }

    /// A body of this snapshot with its ETag, weak when the snapshot's are.
    fn rendered(&self, content_type: &'static str, body: Body, what: &str) -> Rendered {
        let mut rendered = Rendered::new(content_type, body, &format!("{}-{what}", self.tag));
        if self.weak {
            rendered.etag = format!("W/{}", rendered.etag);
        }
        rendered
    }

    /// A selection of this snapshot in `/cluster`'s form (with its relations) or a list's
    /// (without), made of the same pieces as the full bodies. `query` names the endpoint and
    /// the selection in its ETag: the same query of the same snapshot has the same tag.
    pub(crate) fn selected(
        &self,
        selection: &Selection,
        with_relations: bool,
        query: &str,
    ) -> Rendered {
        let relations = with_relations.then(|| selection.relations.iter().copied());
        let body = self
            .layout
            .compose(&self.graph, selection.resources.iter().copied(), relations);
        self.rendered(JSON, body, &format!("q{:x}", stable_hash(query)))
    }

    /// One resource, with the relations it is an end of: `{"success":true,"timestamp":…,
    /// "sequence":…,"resource":{…},"relations":[…]}`.
    pub(crate) fn one(&self, i: usize) -> Rendered {
        let resource = &self.graph.resources[i];
        let laid = &self.layout.resources[i];
        let glue = |span: &Span| self.layout.piece(span);
        let own = |text: String| Piece::owned(text.into_bytes());
        let mut body = Composed::default();
        body.push(own(format!(
            "{{\"success\":true,\"timestamp\":\"{}\",\"sequence\":{},\"resource\":",
            rfc3339_millis(self.timestamp_ms),
            self.sequence
        )));
        body.push(glue(&laid.prefix));
        body.push(Piece::text(&resource.properties));
        body.push(glue(&laid.suffix));
        body.push(own(",\"relations\":[".to_string()));
        for (n, &j) in self.index().relations_of(&self.graph, i).iter().enumerate() {
            if n > 0 {
                body.push(own(",".to_string()));
            }
            body.push(glue(&self.layout.relations[j]));
        }
        body.push(own("]}".to_string()));
        self.rendered(
            JSON,
            Body::Composed(Arc::new(body)),
            &format!("one-{:x}", stable_hash(&resource.id)),
        )
    }

    /// The resources and relations of a selection, as a graph of their own.
    fn selection_graph(&self, selection: &Selection) -> Graph {
        Graph {
            timestamp_ms: self.graph.timestamp_ms,
            resources: selection
                .resources
                .iter()
                .map(|&i| self.graph.resources[i].clone())
                .collect(),
            relations: selection
                .relations
                .iter()
                .map(|&i| self.graph.relations[i].clone())
                .collect(),
        }
    }

    /// `/debug` of a selection (resources and the relations among them), in DOT.
    pub(crate) fn debug_selected(
        &self,
        selection: &Selection,
        options: DotOptions,
        query: &str,
    ) -> Rendered {
        let graph = self.selection_graph(selection);
        self.rendered(
            DOT,
            Body::Owned(super::dot::render(&graph, options).into_bytes()),
            &format!("dq{:x}", stable_hash(query)),
        )
    }

    /// `/cluster?format=graphml` of a selection.
    pub(crate) fn graphml_selected(&self, selection: &Selection, query: &str) -> Rendered {
        let graph = self.selection_graph(selection);
        self.rendered(
            GRAPHML,
            Body::Owned(super::graphml::render(&graph).into_bytes()),
            &format!("gq{:x}", stable_hash(query)),
        )
    }

    /// The graph this snapshot serves.
    pub fn graph(&self) -> &Graph {
        &self.graph
    }

    /// `/cluster?format=graphml`: the graph in GraphML, rendered on first use.
    pub(crate) fn graphml(&self) -> &Rendered {
        self.graphml.get_or_init(|| {
            self.rendered(
                GRAPHML,
                Body::Shared(super::graphml::render(&self.graph).into_bytes().into()),
                "graphml",
            )
        })
    }

    /// `/debug`: the graph in DOT, rendered on first use.
    pub(crate) fn debug(&self) -> &Rendered {
        self.debug.get_or_init(|| {
            self.rendered(
                DOT,
                Body::Shared(
                    super::dot::render(&self.graph, DotOptions::default())
                        .into_bytes()
                        .into(),
                ),
                "debug",
            )
        })
    }
}

const JSON: &str = "application/json";
const DOT: &str = "text/vnd.graphviz; charset=utf-8";
const GRAPHML: &str = "application/graphml+xml; charset=utf-8";

/// Appends what `write` writes to `glue` and returns where it went.
pub(crate) fn push_range(glue: &mut Vec<u8>, write: impl FnOnce(&mut Vec<u8>)) -> Range<usize> {
    let start = glue.len();
    write(glue);
    start..glue.len()
}

pub(crate) fn write_json_string(out: &mut Vec<u8>, s: &str) {
    // Serializing a &str into a Vec cannot fail.
    let _ = serde_json::to_writer(out, s);
}

fn json_string(s: &str) -> String {
    let mut out = Vec::new();
    write_json_string(&mut out, s);
    String::from_utf8(out).unwrap_or_default()
}

/// A hash that is the same in every run (for ETags, which name content).
fn stable_hash(text: &str) -> u64 {
    bytes_hash(text.as_bytes())
}
