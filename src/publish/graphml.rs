//! The graph in GraphML (`/cluster?format=graphml`), for yEd, Gephi, NetworkX and the other
//! tools that read it: a node per resource with its type, label, namespace and status as
//! data, a directed edge per relation with its type. The properties stay in the JSON.

use super::status::status_of;
use crate::graph::Graph;

/// The graph in GraphML, named after its cluster.
pub(crate) fn render(graph: &Graph) -> String {
    let name = graph
        .resources
        .iter()
        .find(|r| r.kind.name() == "Cluster")
        .map_or("cluster", |r| &*r.label);
    let mut out = String::with_capacity(200 + graph.resources.len() * 200);
    out.push_str(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n\
         <graphml xmlns=\"http://graphml.graphdrawing.org/xmlns\" \
         xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\" \
         xsi:schemaLocation=\"http://graphml.graphdrawing.org/xmlns \
         http://graphml.graphdrawing.org/xmlns/1.0/graphml.xsd\">\n\
         \x20 <key id=\"type\" for=\"node\" attr.name=\"type\" attr.type=\"string\"/>\n\
         \x20 <key id=\"label\" for=\"node\" attr.name=\"label\" attr.type=\"string\"/>\n\
         \x20 <key id=\"namespace\" for=\"node\" attr.name=\"namespace\" attr.type=\"string\"/>\n\
         \x20 <key id=\"status\" for=\"node\" attr.name=\"status\" attr.type=\"string\"/>\n\
         \x20 <key id=\"relation\" for=\"edge\" attr.name=\"relation\" attr.type=\"string\"/>\n",
    );
    out.push_str(&format!(
        "  <graph id=\"{}\" edgedefault=\"directed\">\n",
        escape(name)
    ));
    for r in &graph.resources {
        let label = r.alternate_label.as_deref().unwrap_or(&r.label);
        out.push_str(&format!(
            "    <node id=\"{}\"><data key=\"type\">{}</data><data key=\"label\">{}</data>",
            escape(&r.id),
            r.kind.name(),
            escape(label)
        ));
        if let Some(namespace) = r.namespace() {
            out.push_str(&format!(
                "<data key=\"namespace\">{}</data>",
                escape(namespace)
            ));
        }
        if let Some(status) = status_of(r) {
            out.push_str(&format!("<data key=\"status\">{}</data>", status.name()));
        }
        out.push_str("</node>\n");
    }
    for (i, rel) in graph.relations.iter().enumerate() {
        out.push_str(&format!(
            "    <edge id=\"e{i}\" source=\"{}\" target=\"{}\"><data key=\"relation\">{}</data></edge>\n",
            escape(&rel.source),
            escape(&rel.target),
            rel.kind.as_str()
        ));
    }
    out.push_str("  </graph>\n</graphml>\n");
    out
}

/// Text as XML 1.0 may hold it in content and attributes: the five special characters
/// escaped, and the characters it forbids left out.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\t' | '\n' | '\r' => out.push(c),
            // Characters XML 1.0 does not allow: controls, and U+FFFE and U+FFFF.
            c if c.is_control() || c == '\u{fffe}' || c == '\u{ffff}' => {}
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn special_and_forbidden_characters() {
        assert_eq!(
            escape("a<b>&\"c'\u{1}\u{7f}\u{fffe}\u{ffff}\td"),
            "a&lt;b&gt;&amp;&quot;c&apos;\td"
        );
    }
}
