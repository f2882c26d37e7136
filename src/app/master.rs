//! Master mode, assembled: the collector thread and the API server over one shared state.
//! Used by the binary, by `demo`, and by the benchmark.

use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;
use std::thread::JoinHandle;

use crossbeam_channel::Sender;

use crate::api::{self, ApiState};
use crate::auth::Authorizer;
use crate::collect::{Collector, CollectorConfig};
use crate::http::{self, RunningServer};
use crate::publish::Shared;
use crate::store;

/// A running master. Dropping it leaves it running; [`Master::shutdown`] stops it.
pub struct Master {
    server: RunningServer,
    collector: JoinHandle<()>,
    stop: Sender<()>,
    shared: Arc<Shared>,
}

/// On stopping, how long the history store may take to write what is queued.
const STORE_CLOSE_LIMIT: std::time::Duration = std::time::Duration::from_secs(5);

impl Master {
    /// Starts the collector (its first refresh begins at once) and serves the API on
    /// `listener` with `workers` threads; with `store`, the history goes on from what it
    /// held and is kept there.
    pub fn start(
        collector: CollectorConfig,
        listener: TcpListener,
        workers: usize,
        auth: Arc<Authorizer>,
        store: Option<(store::Opened, Option<store::Restored>)>,
    ) -> std::io::Result<Master> {
        let history_ms = i64::try_from(collector.history.as_millis()).unwrap_or(i64::MAX);
        let shared = Arc::new(match store {
            None => Shared::new(history_ms, &collector.created_by),
            Some((opened, restored)) => Shared::with_store(
                history_ms,
                &collector.created_by,
                opened,
                restored,
                cluster_insight_wire::time::now_millis(),
            )?,
        });
        let state = Arc::new(ApiState {
            shared: Arc::clone(&shared),
            version: collector.created_by.clone(),
            cluster_name: collector.cluster_name.clone(),
            requests: Default::default(),
            auth,
            past: Default::default(),
            making_past: Default::default(),
            streams: Default::default(),
        });
        let collector = Collector::new(collector, Arc::clone(&shared));
        let (stop, stop_rx) = crossbeam_channel::bounded::<()>(1);
        let collector = std::thread::Builder::new()
            .name("collector".into())
            .spawn(move || collector.run(stop_rx))?;
        let server = http::serve_listener_with_probes(
            listener,
            workers,
            "api",
            api::handler(state),
            &["/healthz", "/readyz"],
        )?;
        Ok(Master {
            server,
            collector,
            stop,
            shared,
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.server.local_addr()
    }

    /// Serves until the process ends.
    pub fn join(self) {
        self.server.join();
        let _ = self.collector.join();
    }

    /// Stops serving (the answers in flight finish, within the server's drain limit) and
    /// tells the collector to stop, without waiting for a refresh in progress: for a
    /// process about to exit.
    pub fn stop(self) {
        let _ = self.stop.send(());
        self.server.shutdown();
        self.shared.close_store(STORE_CLOSE_LIMIT);
    }

    /// Stops serving and collecting; waits for a refresh in progress to finish.
    pub fn shutdown(self) {
        self.server.shutdown();
        let _ = self.stop.send(());
        let _ = self.collector.join();
        self.shared.close_store(STORE_CLOSE_LIMIT);
    }
}
