//! A published snapshot: the graph of one refresh, serialized once into every body the API
//! serves (plain and gzip), so that a request costs a reference count and a copy.
//!
//! Snapshots are immutable once built; the collector swaps a new one in (see [`super::Shared`])
//! and handlers clone the `Arc` of whichever one is current. No I/O and no clock here.

use std::collections::BTreeMap;
use std::io::Write;
use std::ops::Range;
use std::sync::{Arc, OnceLock};

use flate2::write::GzEncoder;
use flate2::Compression;

use crate::graph::{Graph, Id, Kind, RELATION_RULES};
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
    fn new(content_type: &'static str, body: Body, etag_base: &str) -> Rendered {
        Rendered {
            content_type,
            body,
            gzip: OnceLock::new(),
            etag: format!("\"{etag_base}\""),
        }
    }

    /// The body gzipped; concurrent first callers wait for one compression.
    pub(crate) fn gzip(&self) -> Arc<[u8]> {
        Arc::clone(self.gzip.get_or_init(|| {
            let mut encoder =
                GzEncoder::new(Vec::with_capacity(self.body.len() / 8), Compression::fast());
            let mut failed = false;
            self.body
                .for_each_piece(|piece| failed |= encoder.write_all(piece).is_err());
            // Writing into a Vec cannot fail.
            let gzip = if failed {
                Vec::new()
            } else {
                encoder.finish().unwrap_or_default()
            };
            gzip.into()
        }))
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
    pub cluster: Rendered,
    pub resources: Rendered,
    pub by_type: BTreeMap<Kind, Rendered>,
    /// The DOT rendering, made on the first request for `/debug` from `graph`.
    debug: OnceLock<Rendered>,
    debug_etag: String,
    /// The home page's examples, found on its first request.
    examples: OnceLock<Examples>,
    pub(crate) graph: Graph,
    pub(crate) counts: Counts,
}

/// Where one resource's JSON lies: `prefix` in the glue, its properties text, `suffix` in
/// the glue, followed there by a comma.
struct Laid {
    prefix: Range<usize>,
    suffix: Range<usize>,
}

/// Serializes `graph` into every body. `created_by` is the `/version` string.
///
/// Every byte we generate (IDs, timestamps, annotations, relations) goes into one glue
/// buffer, written once; each resource's observed object stays where the collector put it.
/// The bodies are lists of pieces of those two.
pub fn render(graph: Graph, created_by: &str, sequence: u64) -> Snapshot {
    let tag = format!("{sequence:x}-{:x}", graph.timestamp_ms);
    let timestamp = rfc3339_millis(graph.timestamp_ms);
    // Most resources of a steady cluster share a handful of timestamps.
    let mut stamps = Stamps::default();
    let created_by_json = json_string(created_by);

    let mut glue: Vec<u8> =
        Vec::with_capacity(graph.resources.len() * 300 + graph.relations.len() * 200 + 256);
    let head = push_range(&mut glue, |g| {
        g.extend_from_slice(b"{\"success\":true,\"timestamp\":\"");
        g.extend_from_slice(timestamp.as_bytes());
        g.extend_from_slice(b"\",\"resources\":[");
    });
    let close_list = push_range(&mut glue, |g| g.extend_from_slice(b"]}"));
    let relations = push_range(&mut glue, |g| {
        g.extend_from_slice(b"],\"relations\":[");
        for (i, rel) in graph.relations.iter().enumerate() {
            if i > 0 {
                g.push(b',');
            }
            g.extend_from_slice(b"{\"type\":\"");
            g.extend_from_slice(rel.kind.as_str().as_bytes());
            g.extend_from_slice(b"\",\"timestamp\":\"");
            g.extend_from_slice(stamps.get(rel.timestamp_ms).as_bytes());
            g.extend_from_slice(b"\",\"source\":");
            write_json_string(g, &rel.source);
            g.extend_from_slice(b",\"target\":");
            write_json_string(g, &rel.target);
            g.extend_from_slice(b",\"annotations\":{\"label\":\"");
            g.extend_from_slice(rel.kind.as_str().as_bytes());
            g.extend_from_slice(b"\",\"createdBy\":");
            g.extend_from_slice(created_by_json.as_bytes());
            g.extend_from_slice(b"}}");
        }
        g.extend_from_slice(b"]}");
    });
    let laid: Vec<Laid> = graph
        .resources
        .iter()
        .map(|r| {
            let prefix = push_range(&mut glue, |g| {
                g.extend_from_slice(b"{\"id\":");
                write_json_string(g, &r.id);
                g.extend_from_slice(b",\"type\":\"");
                g.extend_from_slice(r.kind.name().as_bytes());
                g.extend_from_slice(b"\",\"timestamp\":\"");
                g.extend_from_slice(stamps.get(r.timestamp_ms).as_bytes());
                g.extend_from_slice(b"\",\"properties\":");
            });
            let suffix = push_range(&mut glue, |g| {
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
                    g.extend_from_slice(stamps.get(read_ms).as_bytes());
                    g.push(b'"');
                }
                g.extend_from_slice(b",\"createdBy\":");
                g.extend_from_slice(created_by_json.as_bytes());
                g.extend_from_slice(b"}}");
            });
            // The separator sits right after the suffix, so that "suffix, comma, next
            // prefix" is one contiguous range of the glue.
            glue.push(b',');
            Laid { prefix, suffix }
        })
        .collect();
    let glue: Arc<[u8]> = glue.into();

    let piece = |range: &Range<usize>| Piece::bytes_range(&glue, range.clone());
    let list = |body: &mut Composed, filter: Option<Kind>| {
        let mut previous: Option<&Laid> = None;
        for (laid, resource) in laid.iter().zip(&graph.resources) {
            if filter.is_some_and(|t| t != resource.kind) {
                continue;
            }
            if let Some(previous) = previous {
                // The comma that follows the previous suffix in the glue.
                let comma = previous.suffix.end;
                body.push(Piece::bytes_range(&glue, comma..comma + 1));
            }
            previous = Some(laid);
            body.push(piece(&laid.prefix));
            body.push(Piece::text(&resource.properties));
            body.push(piece(&laid.suffix));
        }
    };

    let mut cluster = Composed::default();
    cluster.push(piece(&head));
    list(&mut cluster, None);
    cluster.push(piece(&relations));

    let mut resources = Composed::default();
    resources.push(piece(&head));
    list(&mut resources, None);
    resources.push(piece(&close_list));

    let mut by_type = BTreeMap::new();
    // Every type one can ask for on its own (the Cluster root is not one).
    for kind in Kind::queryable() {
        let mut body = Composed::default();
        body.push(piece(&head));
        list(&mut body, Some(kind));
        body.push(piece(&close_list));
        by_type.insert(
            kind,
            Rendered::new(
                JSON,
                Body::Composed(Arc::new(body)),
                &format!("{tag}-{kind}"),
            ),
        );
    }

    let mut counts = Counts::default();
    for r in &graph.resources {
        *counts.resources.entry(r.kind.name()).or_default() += 1;
    }
    for r in &graph.relations {
        *counts.relations.entry(r.kind.as_str()).or_default() += 1;
    }

    Snapshot {
        sequence,
        timestamp_ms: graph.timestamp_ms,
        cluster: Rendered::new(
            JSON,
            Body::Composed(Arc::new(cluster)),
            &format!("{tag}-cluster"),
        ),
        resources: Rendered::new(
            JSON,
            Body::Composed(Arc::new(resources)),
            &format!("{tag}-resources"),
        ),
        by_type,
        debug: OnceLock::new(),
        debug_etag: format!("{tag}-debug"),
        examples: OnceLock::new(),
        counts,
        graph,
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
    /// How many types have a list of their own in this snapshot.
    pub(crate) fn types_served(&self) -> usize {
        self.by_type.len()
    }

    /// One resource of each type and one relation of each rule, found on first use.
    pub(crate) fn examples(&self) -> &Examples {
        self.examples.get_or_init(|| Examples::of(&self.graph))
    }

    /// `/debug`: the graph in DOT, rendered on first use.
    pub(crate) fn debug(&self) -> &Rendered {
        self.debug.get_or_init(|| {
            Rendered::new(
                "text/vnd.graphviz; charset=utf-8",
                Body::Shared(super::dot::render(&self.graph).into_bytes().into()),
                &self.debug_etag,
            )
        })
    }
}

const JSON: &str = "application/json";

/// RFC 3339 texts of the timestamps met so far.
#[derive(Default)]
struct Stamps(std::collections::HashMap<i64, String>);

impl Stamps {
    fn get(&mut self, ms: i64) -> &str {
        self.0.entry(ms).or_insert_with(|| rfc3339_millis(ms))
    }
}

/// Appends what `write` writes to `glue` and returns where it went.
fn push_range(glue: &mut Vec<u8>, write: impl FnOnce(&mut Vec<u8>)) -> Range<usize> {
    let start = glue.len();
    write(glue);
    start..glue.len()
}

fn write_json_string(out: &mut Vec<u8>, s: &str) {
    // Serializing a &str into a Vec cannot fail.
    let _ = serde_json::to_writer(out, s);
}

fn json_string(s: &str) -> String {
    let mut out = Vec::new();
    write_json_string(&mut out, s);
    String::from_utf8(out).unwrap_or_default()
}
