//! Where the recorded real API data lives (`../shared/realdata`, beside the repository).

use std::path::{Path, PathBuf};

/// The data's directory; `None` (said loudly) when it is missing, which fails under `CI=true`.
pub fn realdata() -> Option<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/realdata");
    if dir.is_dir() {
        return Some(dir);
    }
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "{} is missing: CI must run with shared/ beside the repository",
        dir.display()
    );
    eprintln!("SKIPPED: {} is missing", dir.display());
    None
}
