//! The `/version` string: `"IMAGE IMAGE_ID BUILD_DATE"` when the process runs in a Docker
//! container it can look up, else the binary's own name, version and build date.
//!
//! The container is found through `/proc/self/mountinfo` (Docker bind-mounts the
//! container's `hostname` and `resolv.conf` from `…/containers/<ID>/`), which works with
//! `--net=host`, where the host name is the host's and says nothing about the container.

use crate::collect::runtime::docker;
use crate::http::{Bearer, Endpoint};
use cluster_insight_wire::time::rfc3339_millis;

/// When this binary was built (RFC 3339 UTC), embedded by `build.rs`.
pub(crate) fn build_date() -> String {
    let secs: i64 = env!("CLUSTER_INSIGHT_BUILD_EPOCH").parse().unwrap_or(0);
    rfc3339_millis(secs * 1000)
}

/// `cluster-insight 0.1.0 BUILD_DATE`.
pub fn binary_version() -> String {
    format!(
        "{} {} {}",
        env!("CARGO_PKG_NAME"),
        env!("CARGO_PKG_VERSION"),
        build_date()
    )
}

/// The ID of the container this process runs in, if any.
pub(crate) fn own_container_id() -> Option<String> {
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
    container_id_from_mountinfo(&mountinfo)
}

fn container_id_from_mountinfo(mountinfo: &str) -> Option<String> {
    mountinfo.lines().find_map(|line| {
        let (_, rest) = line.split_once("/containers/")?;
        let id: String = rest.chars().take_while(|c| c.is_ascii_hexdigit()).collect();
        (id.len() == 64 && rest[64..].starts_with('/')).then_some(id)
    })
}

/// The `/version` string, looking the image up through the Docker daemon at `docker` (a
/// local socket or a minion) when this process runs in a container.
pub(crate) fn version_string(docker: Option<Endpoint>, bearer: Option<Bearer>) -> String {
    let found = own_container_id()
        .zip(docker)
        .and_then(|(id, endpoint)| docker::image_of_container(endpoint, &id, bearer));
    match found {
        Some((name, image_id)) => {
            format!("{name} {} {}", crate::graph::hex12(&image_id), build_date())
        }
        None => binary_version(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_container_in_mountinfo() {
        let id = "a".repeat(64);
        let line = format!("612 590 254:1 /var/lib/docker/containers/{id}/hostname /etc/hostname rw,relatime - ext4 /dev/vda1 rw");
        assert_eq!(container_id_from_mountinfo(&line), Some(id));
        assert_eq!(
            container_id_from_mountinfo("22 1 0:21 / /proc rw - proc proc rw"),
            None
        );
        let short = "612 590 254:1 /var/lib/docker/containers/abc/hostname /etc/hostname rw";
        assert_eq!(container_id_from_mountinfo(short), None);
    }

    #[test]
    fn outside_a_container_the_binary_speaks_for_itself() {
        let v = binary_version();
        assert!(v.starts_with("cluster-insight "));
        assert!(v.ends_with('Z'));
    }
}
