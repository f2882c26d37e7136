//! How long a simulated node takes to answer, by kind of call.
//!
//! A simulator that answers in microseconds hides what a real cluster does to a collector:
//! a real `docker top` runs `ps` in the container and takes tens of milliseconds, a node
//! agent's `GET /node` reads the whole runtime and `/proc`. [`NodeLatency::realistic`] gives
//! every node API call the time a real daemon took on a measured node (the numbers and where
//! they come from are on it); each call waits that long, give or take the jitter, before it
//! is answered. The wait is per call, as on a real node: calls on different connections
//! overlap, as a real daemon's do.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// The kinds of node API calls that are given a latency.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NodeCall {
    /// Docker's `GET /containers/json`.
    List,
    /// Docker's `GET /containers/ID/json`.
    Inspect,
    /// Docker's `GET /containers/ID/top`.
    Top,
    /// Docker's `GET /images/ID/json`.
    Image,
    /// The node agent's `GET /node`.
    Node,
}

/// Per-call latency of every simulated node, and how much it varies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct NodeLatency {
    pub list: Duration,
    pub inspect: Duration,
    pub top: Duration,
    pub image: Duration,
    pub node: Duration,
    /// Each wait is the call's latency times a factor drawn evenly from
    /// `1 ± jitter_percent / 100`.
    pub jitter_percent: u32,
}

impl NodeLatency {
    /// No wait at all (the default: tests that are not about latency stay fast).
    pub fn none() -> NodeLatency {
        NodeLatency::default()
    }

    /// What real daemons take: medians measured on a 2-core machine (README, "Simulated
    /// latency").
    /// - Docker calls: `scripts/measure-docker-latency.sh`, Debian's docker.io 20.10.24 with
    ///   30 running containers of three processes each: list 9.3 ms, inspect 2.0 ms, `top`
    ///   28.4 ms (it runs `ps` for the container), image inspect 2.0 ms.
    /// - `GET /node`: `scripts/bench-agent.sh`, this project's agent on containerd 1.7 with
    ///   114 containers and 1,008 processes: 164 ms.
    ///
    /// Jitter ±50 %: the measured 90th percentiles are 1.25 to 1.6 times the medians.
    pub fn realistic() -> NodeLatency {
        NodeLatency {
            list: Duration::from_millis(9),
            inspect: Duration::from_millis(2),
            top: Duration::from_millis(28),
            image: Duration::from_millis(2),
            node: Duration::from_millis(164),
            jitter_percent: 50,
        }
    }

    fn of(&self, call: NodeCall) -> Duration {
        match call {
            NodeCall::List => self.list,
            NodeCall::Inspect => self.inspect,
            NodeCall::Top => self.top,
            NodeCall::Image => self.image,
            NodeCall::Node => self.node,
        }
    }

    /// How long this call waits: its latency, jittered.
    pub(crate) fn wait_for(&self, call: NodeCall) -> Duration {
        let base = self.of(call);
        if base.is_zero() || self.jitter_percent == 0 {
            return base;
        }
        let spread = f64::from(self.jitter_percent.min(100)) / 100.0;
        // Evenly in [-1, 1].
        let unit = (next_random() >> 11) as f64 / (1u64 << 53) as f64 * 2.0 - 1.0;
        base.mul_f64(1.0 + spread * unit)
    }

    /// Sets one call kind's latency from a `latency-KIND` size key; false for an unknown
    /// kind.
    pub(crate) fn set(&mut self, kind: &str, value: Duration) -> bool {
        let slot = match kind {
            "list" => &mut self.list,
            "inspect" => &mut self.inspect,
            "top" => &mut self.top,
            "image" => &mut self.image,
            "node" => &mut self.node,
            _ => return false,
        };
        *slot = value;
        true
    }
}

/// A splitmix64 sequence shared by every connection: jitter needs spread, not quality.
fn next_random() -> u64 {
    static STATE: AtomicU64 = AtomicU64::new(0x9e37_79b9_7f4a_7c15);
    let mut z = STATE
        .fetch_add(0x9e37_79b9_7f4a_7c15, Ordering::Relaxed)
        .wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jitter_stays_within_its_bounds_and_spreads() {
        let latency = NodeLatency {
            top: Duration::from_millis(100),
            jitter_percent: 50,
            ..NodeLatency::none()
        };
        let waits: Vec<Duration> = (0..2000).map(|_| latency.wait_for(NodeCall::Top)).collect();
        assert!(waits
            .iter()
            .all(|w| *w >= Duration::from_millis(50) && *w <= Duration::from_millis(150)));
        assert!(waits.iter().any(|w| *w < Duration::from_millis(60)));
        assert!(waits.iter().any(|w| *w > Duration::from_millis(140)));
        assert_eq!(latency.wait_for(NodeCall::List), Duration::ZERO);
    }

    #[test]
    fn no_jitter_is_exact() {
        let latency = NodeLatency {
            node: Duration::from_millis(7),
            ..NodeLatency::none()
        };
        assert_eq!(latency.wait_for(NodeCall::Node), Duration::from_millis(7));
        assert_ne!(NodeLatency::realistic(), NodeLatency::none());
    }
}
