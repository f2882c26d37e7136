//! Where the recorded real API data lives: `tests/data/realdata` in this repository, responses
//! recorded by other open-source projects and the Kubernetes OpenAPI document (its `NOTICE.md`
//! names each file's source, commit and licence).

use std::path::{Path, PathBuf};

/// The data's directory. It is part of the repository, so a missing directory is a broken
/// checkout and fails the test. Always `Some`; the `Option` is kept for the callers'
/// `let Some(dir) = realdata() else { return };`.
pub(crate) fn realdata() -> Option<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/realdata");
    assert!(
        dir.is_dir(),
        "{} is missing: the recorded real API data is part of the repository",
        dir.display()
    );
    Some(dir)
}
