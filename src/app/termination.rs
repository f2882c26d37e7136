//! Waiting for the process to be told to stop (SIGTERM from the kubelet or `docker stop`,
//! SIGINT from a terminal), so that it can finish what it is answering and exit 0 instead
//! of being cut off mid-answer.

use signal_hook::consts::{SIGINT, SIGTERM};
use signal_hook::iterator::Signals;

/// Blocks until SIGTERM or SIGINT arrives; returns its name.
pub fn wait() -> std::io::Result<&'static str> {
    let mut signals = Signals::new([SIGTERM, SIGINT])?;
    let signal = signals.forever().next();
    Ok(match signal {
        Some(SIGINT) => "SIGINT",
        _ => "SIGTERM",
    })
}
