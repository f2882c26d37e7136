//! A published snapshot: the graph of one refresh, serialized once into every body the API
//! serves (plain and gzip), so that a request costs a reference count and a copy.
//!
//! Snapshots are immutable once built; the collector swaps a new one in behind an
//! `Arc<RwLock<…>>` and handlers clone the `Arc` of whichever one is current.

use std::collections::BTreeMap;
use std::io::Write;
use std::sync::Arc;

use flate2::write::GzEncoder;
use flate2::Compression;

use crate::graph::{Graph, ResourceType};
use crate::timefmt::rfc3339_millis;

/// One endpoint's body, in both encodings, with its entity tag.
#[derive(Debug, Clone)]
pub struct Rendered {
    pub content_type: &'static str,
    pub body: Arc<[u8]>,
    pub gzip: Arc<[u8]>,
    /// Strong tag of the plain body; the gzip body's tag adds `-gzip` inside the quotes.
    pub etag: String,
}

impl Rendered {
    fn new(content_type: &'static str, body: Vec<u8>, etag_base: &str) -> Rendered {
        let mut encoder = GzEncoder::new(Vec::with_capacity(body.len() / 8), Compression::fast());
        // Writing into a Vec cannot fail.
        let gzip = encoder
            .write_all(&body)
            .and_then(|_| encoder.finish())
            .unwrap_or_default();
        Rendered {
            content_type,
            body: body.into(),
            gzip: gzip.into(),
            etag: format!("\"{etag_base}\""),
        }
    }

    pub fn gzip_etag(&self) -> String {
        format!("{}-gzip\"", self.etag.trim_end_matches('"'))
    }
}

/// Counts of a graph, for `/status` and the logs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Counts {
    pub resources: BTreeMap<&'static str, usize>,
    pub relations: BTreeMap<&'static str, usize>,
}

#[derive(Debug)]
pub struct Snapshot {
    /// Increases by one with every snapshot the process publishes.
    pub sequence: u64,
    pub timestamp_ms: i64,
    pub cluster: Rendered,
    pub resources: Rendered,
    pub by_type: BTreeMap<ResourceType, Rendered>,
    pub debug: Rendered,
    pub counts: Counts,
}

/// Serializes `graph` into every body. `created_by` is the `/version` string.
pub fn render(graph: &Graph, created_by: &str, sequence: u64) -> Snapshot {
    let tag = format!("{sequence:x}-{:x}", graph.timestamp_ms);
    let timestamp = rfc3339_millis(graph.timestamp_ms);
    let created_by_json = json_string(created_by);

    // Each resource is serialized once; the bodies are assembled from these pieces.
    let pieces: Vec<Vec<u8>> = graph
        .resources
        .iter()
        .map(|r| {
            let mut out = Vec::with_capacity(r.properties.len() + 256);
            out.extend_from_slice(b"{\"id\":");
            write_json_string(&mut out, &r.id);
            out.extend_from_slice(b",\"type\":\"");
            out.extend_from_slice(r.kind.as_str().as_bytes());
            out.extend_from_slice(b"\",\"timestamp\":\"");
            out.extend_from_slice(rfc3339_millis(r.timestamp_ms).as_bytes());
            out.extend_from_slice(b"\",\"properties\":");
            out.extend_from_slice(r.properties.as_bytes());
            out.extend_from_slice(b",\"annotations\":{\"label\":");
            write_json_string(&mut out, &r.label);
            if let Some(alt) = &r.alternate_label {
                out.extend_from_slice(b",\"alternateLabel\":");
                write_json_string(&mut out, alt);
            }
            out.extend_from_slice(b",\"createdBy\":");
            out.extend_from_slice(created_by_json.as_bytes());
            out.extend_from_slice(b"}}");
            out
        })
        .collect();
    let resources_len: usize = pieces.iter().map(|p| p.len() + 1).sum();

    let head = |out: &mut Vec<u8>| {
        out.extend_from_slice(b"{\"success\":true,\"timestamp\":\"");
        out.extend_from_slice(timestamp.as_bytes());
        out.extend_from_slice(b"\",\"resources\":[");
    };
    let list = |out: &mut Vec<u8>, filter: Option<ResourceType>| {
        let mut first = true;
        for (piece, resource) in pieces.iter().zip(&graph.resources) {
            if filter.is_some_and(|t| t != resource.kind) {
                continue;
            }
            if !first {
                out.push(b',');
            }
            first = false;
            out.extend_from_slice(piece);
        }
        out.push(b']');
    };

    let mut cluster = Vec::with_capacity(resources_len + graph.relations.len() * 160 + 128);
    head(&mut cluster);
    list(&mut cluster, None);
    cluster.extend_from_slice(b",\"relations\":[");
    for (i, rel) in graph.relations.iter().enumerate() {
        if i > 0 {
            cluster.push(b',');
        }
        cluster.extend_from_slice(b"{\"type\":\"");
        cluster.extend_from_slice(rel.kind.as_str().as_bytes());
        cluster.extend_from_slice(b"\",\"timestamp\":\"");
        cluster.extend_from_slice(rfc3339_millis(rel.timestamp_ms).as_bytes());
        cluster.extend_from_slice(b"\",\"source\":");
        write_json_string(&mut cluster, &rel.source);
        cluster.extend_from_slice(b",\"target\":");
        write_json_string(&mut cluster, &rel.target);
        cluster.extend_from_slice(b",\"annotations\":{\"label\":\"");
        cluster.extend_from_slice(rel.kind.as_str().as_bytes());
        cluster.extend_from_slice(b"\",\"createdBy\":");
        cluster.extend_from_slice(created_by_json.as_bytes());
        cluster.extend_from_slice(b"}}");
    }
    cluster.extend_from_slice(b"]}");

    let mut resources = Vec::with_capacity(resources_len + 128);
    head(&mut resources);
    list(&mut resources, None);
    resources.push(b'}');

    let mut by_type = BTreeMap::new();
    for kind in ResourceType::ALL {
        let mut body = Vec::new();
        head(&mut body);
        list(&mut body, Some(kind));
        body.push(b'}');
        by_type.insert(
            kind,
            Rendered::new("application/json", body, &format!("{tag}-{kind}")),
        );
    }

    let mut counts = Counts::default();
    for r in &graph.resources {
        *counts.resources.entry(r.kind.as_str()).or_default() += 1;
    }
    for r in &graph.relations {
        *counts.relations.entry(r.kind.as_str()).or_default() += 1;
    }

    Snapshot {
        sequence,
        timestamp_ms: graph.timestamp_ms,
        cluster: Rendered::new("application/json", cluster, &format!("{tag}-cluster")),
        resources: Rendered::new("application/json", resources, &format!("{tag}-resources")),
        by_type,
        debug: Rendered::new(
            "text/vnd.graphviz; charset=utf-8",
            render_dot(graph).into_bytes(),
            &format!("{tag}-debug"),
        ),
        counts,
    }
}

/// The graph in Graphviz DOT: one node per resource labelled `Type: label`, one edge per
/// relation labelled with its type.
pub fn render_dot(graph: &Graph) -> String {
    let mut out = String::from("digraph cluster_insight {\n  rankdir=LR;\n  node [shape=box];\n");
    for r in &graph.resources {
        out.push_str(&format!(
            "  {} [label={}];\n",
            dot_string(&r.id),
            dot_string(&format!("{}: {}", r.kind, r.label))
        ));
    }
    for rel in &graph.relations {
        out.push_str(&format!(
            "  {} -> {} [label={}];\n",
            dot_string(&rel.source),
            dot_string(&rel.target),
            dot_string(rel.kind.as_str())
        ));
    }
    out.push_str("}\n");
    out
}

fn dot_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
    out.push('"');
    out
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
