//! The graph in Graphviz DOT, for people: `/debug`.

use crate::graph::Graph;

/// The graph in Graphviz DOT: one node per resource labelled `Type: label`, one edge per
/// relation labelled with its type.
pub(crate) fn render(graph: &Graph) -> String {
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
