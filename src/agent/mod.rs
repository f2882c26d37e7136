//! The node agent's reading of its own node: the container runtime (CRI `runtime.v1` or the
//! Docker Engine API, over the runtime's Unix socket) and the host's processes (`/proc`).
//! Everything here only reads, and runs in minion mode, on the node.
pub mod cri;
