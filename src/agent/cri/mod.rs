//! A read-only client of the CRI `runtime.v1` gRPC API, the one containerd and CRI-O serve
//! on their Unix sockets (`/run/containerd/containerd.sock`, `/var/run/crio/crio.sock`).
//!
//! The messages are prost types generated once from the CRI proto ([`api`]).

// Generated code: the proto's comments, which become its docs, write placeholders such as
// `<size>` that rustdoc takes for HTML tags; they are not ours to change.
#[allow(rustdoc::invalid_html_tags)]
pub mod api;
mod json;
