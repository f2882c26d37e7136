//! The host's processes, read from `/proc` (the agent runs with the host's PID namespace),
//! each mapped to its container by its cgroup and written as a `ps aux` row.
//!
//! Only four files of a process are ever opened: `stat`, `status`, `cmdline` and `cgroup`
//! ([`PidFile`] has no other variant). `environ` in particular is never read: it holds the
//! secrets of every workload on the node, and nothing here needs it.
//!
//! Everything tolerates a live system: a process may exit between the directory listing and
//! the reading of its files, and a hostile workload chooses its own command name and
//! command line. Neither makes the scan fail or panic; the process is skipped and counted.

use std::collections::HashMap;
use std::fmt;
use std::fs;
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use cluster_insight_wire::time::rfc3339_millis;
use serde::ser::{SerializeMap, Serializer};
use serde::Serialize;

/// Clock ticks per second of every tick count in `/proc` (`utime`, `stime`, `starttime`).
/// The kernel converts its internal jiffies to `USER_HZ` for userspace, and `USER_HZ` is
/// 100 on every Linux architecture (it is part of the ABI, which is why
/// `sysconf(_SC_CLK_TCK)` answers 100 regardless of `CONFIG_HZ`); so it needs no libc call.
const USER_HZ: u64 = 100;

/// A container ID as runtimes write it in cgroup paths: 64 lowercase hex digits.
const ID_LEN: usize = 64;

/// Caps on how much of one file is read: a hostile node cannot make the agent allocate
/// without bound. `stat` is about 300 bytes; `status` under 2 KiB; a command line beyond
/// 4 KiB is cut (older kernels cut it at one page as well).
const STAT_CAP: u64 = 4096;
const STATUS_CAP: u64 = 64 * 1024;
const CMDLINE_CAP: u64 = 4096;
const CGROUP_CAP: u64 = 64 * 1024;
const SYSTEM_FILE_CAP: u64 = 1024 * 1024;

/// The columns of a row, in the order `ps aux` prints them, with `PPID` where
/// `ps -o user,pid,ppid,…` would put it.
pub(crate) const COLUMNS: [&str; 12] = [
    "USER", "PID", "PPID", "%CPU", "%MEM", "VSZ", "RSS", "TTY", "STAT", "START", "TIME", "COMMAND",
];

#[derive(Debug, Clone)]
pub(crate) struct ScanOptions {
    /// Rows kept per container; the rest are counted in [`ContainerProcesses::omitted`].
    pub(crate) max_per_container: usize,
    /// A passwd file for user names (the host's, e.g. `/proc/1/root/etc/passwd`). The
    /// agent's own image has none; without one, or when it cannot be read, USER is the
    /// numeric UID.
    pub(crate) passwd: Option<PathBuf>,
}

impl Default for ScanOptions {
    fn default() -> Self {
        ScanOptions {
            max_per_container: 10_000,
            passwd: None,
        }
    }
}

/// One process as a `ps aux` row: the strings `ps` would print, by [`COLUMNS`] title.
/// Serialized as a JSON object in column order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ProcessRow {
    pub(crate) pid: u32,
    /// 0 for the init process and for kernel threads' parent `kthreadd`.
    pub(crate) ppid: u32,
    cells: [String; COLUMNS.len()],
}

impl ProcessRow {
    pub(crate) fn columns(&self) -> impl Iterator<Item = (&'static str, &str)> + '_ {
        COLUMNS
            .iter()
            .copied()
            .zip(self.cells.iter().map(String::as_str))
    }

    #[cfg(test)]
    pub(crate) fn get(&self, title: &str) -> Option<&str> {
        let i = COLUMNS.iter().position(|c| *c == title)?;
        Some(&self.cells[i])
    }
}

impl Serialize for ProcessRow {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(COLUMNS.len()))?;
        for (title, value) in self.columns() {
            map.serialize_entry(title, value)?;
        }
        map.end()
    }
}

#[derive(Debug, Default, Clone, Serialize)]
pub(crate) struct ContainerProcesses {
    /// In PID order; the lowest PIDs are kept when the cap cuts, as they are usually the
    /// container's first process and the roots of its tree.
    pub(crate) rows: Vec<ProcessRow>,
    /// Processes of this container beyond [`ScanOptions::max_per_container`].
    pub(crate) omitted: usize,
}

/// The result of one scan. Every process listed in the directory lands in exactly one
/// count: `scanned == vanished + unreadable + outside_containers + Σ (rows + omitted)`.
#[derive(Debug, Default, Clone, Serialize)]
pub(crate) struct ProcessTable {
    /// By 64-hex container ID.
    pub(crate) by_container: HashMap<String, ContainerProcesses>,
    /// Processes in no container: the host's own, kernel threads, runtime shims.
    pub(crate) outside_containers: usize,
    /// Gone between the listing and the reading of their files.
    pub(crate) vanished: usize,
    /// Present but unreadable (permissions) or malformed.
    pub(crate) unreadable: usize,
    /// Numeric entries of the `/proc` directory.
    pub(crate) scanned: usize,
    /// The kernel's own thread starter is there (PID 2, `kthreadd`, parent 0): this `/proc`
    /// is the host's PID namespace, which no container's own namespace shows.
    pub(crate) host_namespace: bool,
}

/// The scan could not start: the `/proc` directory itself cannot be read.
#[derive(Debug)]
pub(crate) struct ProcError {
    pub(crate) path: PathBuf,
    pub(crate) source: io::Error,
}

impl fmt::Display for ProcError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "listing processes in {}", self.path.display())
    }
}

impl std::error::Error for ProcError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.source)
    }
}

/// Why one process yields no row.
#[derive(Debug)]
pub(crate) enum ProcessError {
    /// It exited while being read (`ENOENT`, `ESRCH`): normal on a live system.
    Vanished,
    /// One of its files could not be read for another reason.
    Io {
        file: &'static str,
        source: io::Error,
    },
    /// One of its files did not have the kernel's format.
    Malformed { file: &'static str },
}

impl fmt::Display for ProcessError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ProcessError::Vanished => f.write_str("the process exited"),
            ProcessError::Io { file, .. } => write!(f, "reading {file}"),
            ProcessError::Malformed { file } => write!(f, "{file} is malformed"),
        }
    }
}

impl std::error::Error for ProcessError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ProcessError::Io { source, .. } => Some(source),
            ProcessError::Vanished | ProcessError::Malformed { .. } => None,
        }
    }
}

/// Facts of the host that every row needs, read once per scan. Each is optional: a
/// missing one blanks the columns that need it (`?`, or `0.0`), never the scan.
#[derive(Debug, Clone, Default)]
pub(crate) struct Host {
    /// Seconds since boot, whole (`/proc/uptime`), as `ps` counts a process's age.
    uptime_secs: Option<u64>,
    /// Boot time, Unix seconds (`btime` of `/proc/stat`).
    boot_time: Option<i64>,
    mem_total_kib: Option<u64>,
    /// The clock, Unix seconds, for START.
    now: i64,
    users: HashMap<u32, String>,
}

impl Host {
    pub(crate) fn read(proc_root: &Path, passwd: Option<&Path>) -> Host {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
        Host::read_at(proc_root, passwd, now)
    }

    fn read_at(proc_root: &Path, passwd: Option<&Path>, now: i64) -> Host {
        let text = |name: &str| {
            read_capped(&proc_root.join(name), SYSTEM_FILE_CAP)
                .ok()
                .map(|b| String::from_utf8_lossy(&b).into_owned())
        };
        let uptime_secs = text("uptime").and_then(|t| {
            let first = t.split_ascii_whitespace().next()?;
            first.split('.').next()?.parse().ok()
        });
        let boot_time = text("stat").and_then(|t| {
            t.lines()
                .find_map(|l| l.strip_prefix("btime "))
                .and_then(|v| v.trim().parse().ok())
        });
        let mem_total_kib = text("meminfo").and_then(|t| {
            t.lines()
                .find_map(|l| l.strip_prefix("MemTotal:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
                .filter(|kib: &u64| *kib > 0)
        });
        let users = passwd
            .and_then(|p| read_capped(p, SYSTEM_FILE_CAP).ok())
            .map(|b| parse_passwd(&String::from_utf8_lossy(&b)))
            .unwrap_or_default();
        Host {
            uptime_secs,
            boot_time,
            mem_total_kib,
            now,
            users,
        }
    }
}

/// Reads every process of `proc_root` (the host's `/proc`), groups those in a container by
/// container ID and counts the others. Threads are not listed: a `/proc` directory lists
/// thread-group leaders only (a thread's `/proc/TID` exists but is not in the listing).
pub(crate) fn scan(proc_root: &Path, options: &ScanOptions) -> Result<ProcessTable, ProcError> {
    let host = Host::read(proc_root, options.passwd.as_deref());
    scan_with(proc_root, options, &host)
}

fn scan_with(
    proc_root: &Path,
    options: &ScanOptions,
    host: &Host,
) -> Result<ProcessTable, ProcError> {
    let entries = fs::read_dir(proc_root).map_err(|source| ProcError {
        path: proc_root.to_path_buf(),
        source,
    })?;
    // An error in the middle of the listing ends it: what was listed is still a scan.
    let mut pids: Vec<u32> = entries
        .map_while(Result::ok)
        .filter_map(|e| pid_of(e.file_name().to_str()?))
        .collect();
    pids.sort_unstable();

    let mut table = ProcessTable {
        scanned: pids.len(),
        host_namespace: is_kthreadd(&proc_root.join("2")),
        ..ProcessTable::default()
    };
    for pid in pids {
        let dir = proc_root.join(pid.to_string());
        // The cgroup first: processes outside containers, and those over the cap, cost
        // one small read and no more.
        let id = match read_pid_file(&dir, PidFile::Cgroup, CGROUP_CAP) {
            Ok(bytes) => container_id(&String::from_utf8_lossy(&bytes)),
            Err(e) => {
                table.count_skipped(&e);
                continue;
            }
        };
        let Some(id) = id else {
            table.outside_containers += 1;
            continue;
        };
        let kept = table.by_container.get(&id).map_or(0, |c| c.rows.len());
        if kept >= options.max_per_container {
            table.by_container.entry(id).or_default().omitted += 1;
            continue;
        }
        match read_process_in(&dir, pid, host) {
            Ok(row) => table.by_container.entry(id).or_default().rows.push(row),
            Err(e) => table.count_skipped(&e),
        }
    }
    Ok(table)
}

impl ProcessTable {
    fn count_skipped(&mut self, e: &ProcessError) {
        match e {
            ProcessError::Vanished => self.vanished += 1,
            ProcessError::Io { .. } | ProcessError::Malformed { .. } => self.unreadable += 1,
        }
    }
}

/// One process's row, in a container or not.
#[cfg(test)]
pub(crate) fn read_process(
    proc_root: &Path,
    pid: u32,
    host: &Host,
) -> Result<ProcessRow, ProcessError> {
    read_process_in(&proc_root.join(pid.to_string()), pid, host)
}

fn pid_of(name: &str) -> Option<u32> {
    if name.is_empty() || !name.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    name.parse().ok().filter(|pid| *pid > 0)
}

/// The only files of a process this module opens.
#[derive(Debug, Clone, Copy)]
enum PidFile {
    Stat,
    Status,
    Cmdline,
    Cgroup,
}

impl PidFile {
    fn name(self) -> &'static str {
        match self {
            PidFile::Stat => "stat",
            PidFile::Status => "status",
            PidFile::Cmdline => "cmdline",
            PidFile::Cgroup => "cgroup",
        }
    }
}

fn read_pid_file(dir: &Path, file: PidFile, cap: u64) -> Result<Vec<u8>, ProcessError> {
    read_capped(&dir.join(file.name()), cap).map_err(|source| {
        // ESRCH: the process exited after its file was opened.
        const ESRCH: i32 = 3;
        if source.kind() == io::ErrorKind::NotFound || source.raw_os_error() == Some(ESRCH) {
            ProcessError::Vanished
        } else {
            ProcessError::Io {
                file: file.name(),
                source,
            }
        }
    })
}

fn read_capped(path: &Path, cap: u64) -> io::Result<Vec<u8>> {
    let mut bytes = Vec::new();
    fs::File::open(path)?.take(cap).read_to_end(&mut bytes)?;
    Ok(bytes)
}

fn read_process_in(dir: &Path, pid: u32, host: &Host) -> Result<ProcessRow, ProcessError> {
    let malformed = |file: PidFile| ProcessError::Malformed { file: file.name() };
    let stat = read_pid_file(dir, PidFile::Stat, STAT_CAP)?;
    let stat = parse_stat(&stat).ok_or(malformed(PidFile::Stat))?;
    let status = read_pid_file(dir, PidFile::Status, STATUS_CAP)?;
    let status =
        parse_status(&String::from_utf8_lossy(&status)).ok_or(malformed(PidFile::Status))?;
    let cmdline = read_pid_file(dir, PidFile::Cmdline, CMDLINE_CAP)?;
    Ok(row(pid, &stat, &status, &cmdline, host))
}

/// The fields of `/proc/PID/stat` a row needs.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Stat {
    comm: String,
    state: char,
    ppid: u32,
    pgrp: i64,
    session: i64,
    tty_nr: i64,
    tpgid: i64,
    /// utime + stime, in ticks.
    cpu_ticks: u64,
    nice: i64,
    threads: i64,
    start_ticks: u64,
    vsize_bytes: u64,
}

/// The command name is the second field, in parentheses, and is chosen by the process: it
/// may hold spaces, `(` and `)`. No field after it can hold `)`, so the name ends at the
/// last `)` of the line.
fn parse_stat(bytes: &[u8]) -> Option<Stat> {
    let open = bytes.iter().position(|&b| b == b'(')?;
    let close = bytes.iter().rposition(|&b| b == b')')?;
    if close < open {
        return None;
    }
    let comm = printable(&String::from_utf8_lossy(&bytes[open + 1..close]));
    let rest = std::str::from_utf8(&bytes[close + 1..]).ok()?;
    // rest[0] is field 3 (state); field N of proc(5) is rest[N - 3].
    let f: Vec<&str> = rest.split_ascii_whitespace().collect();
    if f.len() < 22 {
        return None;
    }
    let mut state = f[0].chars();
    let state = state
        .next()
        .filter(|c| c.is_ascii_alphabetic() && state.next().is_none())?;
    let int = |i: usize| f[i].parse::<i64>().ok();
    let uint = |i: usize| f[i].parse::<u64>().ok();
    Some(Stat {
        comm,
        state,
        ppid: f[1].parse().ok()?,
        pgrp: int(2)?,
        session: int(3)?,
        tty_nr: int(4)?,
        tpgid: int(5)?,
        cpu_ticks: uint(11)?.checked_add(uint(12)?)?,
        nice: int(16)?,
        threads: int(17)?,
        start_ticks: uint(19)?,
        vsize_bytes: uint(20)?,
    })
}

/// The fields of `/proc/PID/status` a row needs.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Status {
    /// The effective UID, which `ps` shows as USER.
    euid: u32,
    /// Absent for kernel threads, which have no memory of their own.
    rss_kib: u64,
    locked_kib: u64,
}

fn parse_status(text: &str) -> Option<Status> {
    let field = |name: &str| text.lines().find_map(|l| l.strip_prefix(name));
    let kib = |name: &str| {
        field(name)
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or(0)
    };
    // Uid: real, effective, saved, filesystem.
    let euid = field("Uid:")?
        .split_ascii_whitespace()
        .nth(1)?
        .parse()
        .ok()?;
    Some(Status {
        euid,
        rss_kib: kib("VmRSS:"),
        locked_kib: kib("VmLck:"),
    })
}

/// UID → name, the first entry of a UID winning as it does for `getpwuid`.
fn parse_passwd(text: &str) -> HashMap<u32, String> {
    let mut users = HashMap::new();
    for line in text.lines() {
        let mut f = line.split(':');
        let (Some(name), Some(_), Some(uid)) = (f.next(), f.next(), f.next()) else {
            continue;
        };
        let Ok(uid) = uid.parse::<u32>() else {
            continue;
        };
        if !name.is_empty() && !name.starts_with('#') {
            users.entry(uid).or_insert_with(|| printable(name));
        }
    }
    users
}

fn row(pid: u32, stat: &Stat, status: &Status, cmdline: &[u8], host: &Host) -> ProcessRow {
    let user = host
        .users
        .get(&status.euid)
        .cloned()
        .unwrap_or_else(|| status.euid.to_string());
    let cells = [
        user,
        pid.to_string(),
        stat.ppid.to_string(),
        percent_cpu(stat, host.uptime_secs),
        percent_mem(status.rss_kib, host.mem_total_kib),
        (stat.vsize_bytes / 1024).to_string(),
        status.rss_kib.to_string(),
        tty_name(stat.tty_nr),
        stat_column(pid, stat, status),
        start_column(stat.start_ticks, host),
        time_column(stat.cpu_ticks),
        command(cmdline, stat),
    ];
    ProcessRow {
        pid,
        ppid: stat.ppid,
        cells,
    }
}

/// Tenths of a percent, as `ps` prints them: truncated, and from 100 % on without the
/// decimal (`ps` writes `150`, not `150.0`).
fn tenths(permille: u64) -> String {
    if permille > 999 {
        (permille / 10).to_string()
    } else {
        format!("{}.{}", permille / 10, permille % 10)
    }
}

/// CPU time over the process's lifetime, in whole seconds as `ps` counts it: a process
/// younger than a second has 0.0.
fn percent_cpu(stat: &Stat, uptime_secs: Option<u64>) -> String {
    let Some(uptime) = uptime_secs else {
        return tenths(0);
    };
    let age = uptime.saturating_sub(stat.start_ticks / USER_HZ);
    if age == 0 {
        return tenths(0);
    }
    tenths(stat.cpu_ticks.saturating_mul(1000) / USER_HZ / age)
}

fn percent_mem(rss_kib: u64, mem_total_kib: Option<u64>) -> String {
    match mem_total_kib {
        Some(total) if total > 0 => tenths(rss_kib.saturating_mul(1000) / total),
        _ => tenths(0),
    }
}

/// The terminal from its device number (major in bits 8–19, minor in bits 0–7 and 20–31),
/// for the devices whose names are fixed; `?` for none and for the others.
fn tty_name(tty_nr: i64) -> String {
    let nr = tty_nr as u32;
    if nr == 0 {
        return "?".to_string();
    }
    let major = (nr >> 8) & 0xfff;
    let minor = (nr & 0xff) | ((nr >> 12) & 0xfff00);
    match major {
        // Unix98 pseudo-terminals: majors 136–143, 256 minors each.
        136..=143 => format!("pts/{}", (major - 136) * 256 + minor),
        4 if minor < 64 => format!("tty{minor}"),
        4 => format!("ttyS{}", minor - 64),
        5 if minor == 1 => "console".to_string(),
        _ => "?".to_string(),
    }
}

/// The state letter and the flags `ps` adds: `<` raised priority, `N` lowered, `L` pages
/// locked in memory, `s` session leader, `l` multi-threaded, `+` in the foreground process
/// group of its terminal.
fn stat_column(pid: u32, stat: &Stat, status: &Status) -> String {
    let mut s = String::with_capacity(6);
    s.push(stat.state);
    if stat.nice < 0 {
        s.push('<');
    } else if stat.nice > 0 {
        s.push('N');
    }
    if status.locked_kib > 0 {
        s.push('L');
    }
    if stat.session == i64::from(pid) {
        s.push('s');
    }
    if stat.threads > 1 {
        s.push('l');
    }
    if stat.tpgid >= 0 && stat.tpgid == stat.pgrp {
        s.push('+');
    }
    s
}

/// `HH:MM` when started within the last 24 hours, else `MonDD`, else the year when it was
/// not this year (as `ps` does for old processes). In UTC: the agent's image has no time
/// zone database, and the node's local zone would mean little to a reader elsewhere.
fn start_column(start_ticks: u64, host: &Host) -> String {
    let Some(boot) = host.boot_time else {
        return "?".to_string();
    };
    let start = boot.saturating_add(i64::try_from(start_ticks / USER_HZ).unwrap_or(i64::MAX));
    // Within years 1970–9999 the text has a fixed layout, `YYYY-MM-DDTHH:MM:SS.mmmZ`,
    // whatever a hostile `btime` says.
    const LAST: i64 = 253_402_300_799;
    let at = |secs: i64| rfc3339_millis(secs.clamp(0, LAST) * 1000);
    let started = at(start);
    if host.now.saturating_sub(start) < 24 * 3600 {
        return started[11..16].to_string();
    }
    if started[..4] != at(host.now)[..4] {
        return started[..4].to_string();
    }
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let month = started[5..7]
        .parse::<usize>()
        .ok()
        .and_then(|m| MONTHS.get(m.checked_sub(1)?));
    format!("{}{}", month.unwrap_or(&"?"), &started[8..10])
}

/// Cumulative CPU time as `M:SS`, minutes unbounded, as in `ps aux`.
fn time_column(cpu_ticks: u64) -> String {
    let secs = cpu_ticks / USER_HZ;
    format!("{}:{:02}", secs / 60, secs % 60)
}

/// The command line, arguments joined by spaces; `[comm]` when it has none (kernel
/// threads, zombies, processes that emptied it), and ` <defunct>` after a zombie's.
fn command(cmdline: &[u8], stat: &Stat) -> String {
    let args: Vec<String> = cmdline
        .split(|&b| b == 0)
        .filter(|a| !a.is_empty())
        .map(|a| printable(&String::from_utf8_lossy(a)))
        .collect();
    let mut text = if args.is_empty() {
        format!("[{}]", stat.comm)
    } else {
        args.join(" ")
    };
    if stat.state == 'Z' {
        text.push_str(" <defunct>");
    }
    text
}

/// Control characters as `?`, as `ps` shows them: a command line may hold escape sequences
/// meant for a reader's terminal.
fn printable(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_control() { '?' } else { c })
        .collect()
}

/// The container a process is in, from the text of its `/proc/PID/cgroup`: the 64-hex ID
/// the runtime wrote into the cgroup path, in any of its forms:
///
/// - cgroupfs driver: `/kubepods/besteffort/pod<uid>/<id>`, `/kubepods/pod<uid>/<id>`,
///   `/docker/<id>`, CRI-O's `/kubepods/…/pod<uid>/crio-<id>`;
/// - systemd driver: `…/cri-containerd-<id>.scope`, `…/crio-<id>.scope`,
///   `/system.slice/docker-<id>.scope` (and podman's `libpod-<id>.scope`).
///
/// Not a container: `crio-conmon-<id>.scope` (CRI-O's monitor of the container, not a
/// process of it), the runtime's own services and shims, the pod level
/// (`…/pod<uid>`), the root.
///
/// A cgroup v2 line (`0::/path`) decides when it names a container; otherwise the v1 lines
/// that name one must agree, or there is no answer. Paths relative to another cgroup
/// namespace (`/../../…`) are read the same way.
///
/// Nested containers (Docker in a container, or a node that is itself a container, as
/// with kind): the ID is the first after the first `kubepods*` component, else the first
/// of the path. That is the container the node's runtime knows: for Docker in a pod's
/// container (`/kubepods/…/<outer>/docker/<inner>`) the pod's container, which the inner
/// one's processes belong to as well; for a node in a container
/// (`/docker/<node>/kubepods/…/<id>`) the pod's container, not the node's.
pub(crate) fn container_id(cgroup_file_text: &str) -> Option<String> {
    let mut v2 = None;
    let mut v1 = None;
    let mut v1_disagree = false;
    for line in cgroup_file_text.lines() {
        let mut parts = line.splitn(3, ':');
        let (Some(hierarchy), Some(controllers), Some(path)) =
            (parts.next(), parts.next(), parts.next())
        else {
            continue;
        };
        let Some(id) = id_in_path(path) else {
            continue;
        };
        if hierarchy == "0" && controllers.is_empty() {
            v2.get_or_insert(id);
        } else {
            match v1 {
                None => v1 = Some(id),
                Some(seen) if seen != id => v1_disagree = true,
                Some(_) => {}
            }
        }
    }
    let id = v2.or(if v1_disagree { None } else { v1 });
    id.map(str::to_owned)
}

fn id_in_path(path: &str) -> Option<&str> {
    let components: Vec<&str> = path.split('/').collect();
    let from = components
        .iter()
        .position(|c| c.starts_with("kubepods"))
        .unwrap_or(0);
    components[from..].iter().copied().find_map(id_in_component)
}

fn id_in_component(component: &str) -> Option<&str> {
    if is_id(component) {
        return Some(component);
    }
    // systemd's units end in `.scope`; CRI-O's cgroupfs manager names cgroups the same
    // without it (`/kubepods/besteffort/pod<uid>/crio-<id>`).
    let unit = component.strip_suffix(".scope").unwrap_or(component);
    ["cri-containerd-", "crio-", "docker-", "libpod-"]
        .iter()
        .find_map(|prefix| unit.strip_prefix(prefix))
        .filter(|id| is_id(id))
}

/// Whether the process at `dir` is the kernel's `kthreadd` (comm `kthreadd`, parent 0).
fn is_kthreadd(dir: &Path) -> bool {
    let Ok(stat) = read_pid_file(dir, PidFile::Stat, STAT_CAP) else {
        return false;
    };
    let stat = String::from_utf8_lossy(&stat);
    let (Some(open), Some(close)) = (stat.find('('), stat.rfind(')')) else {
        return false;
    };
    let comm = stat.get(open + 1..close).unwrap_or_default();
    // After the comm: state, then the parent's PID.
    let ppid = stat
        .get(close + 1..)
        .and_then(|rest| rest.split_whitespace().nth(1));
    comm == "kthreadd" && ppid == Some("0")
}

fn is_id(text: &str) -> bool {
    text.len() == ID_LEN && text.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
    const B: &str = "fedcba9876543210fedcba9876543210fedcba9876543210fedcba9876543210";
    /// 2026-12-01T18:40:25Z
    const BOOT: i64 = 1_796_150_425;

    fn id(text: &str) -> Option<String> {
        container_id(text)
    }

    #[test]
    fn cgroupfs_paths() {
        assert_eq!(
            id(&format!("0::/kubepods/besteffort/pod1f0e/{A}\n")),
            Some(A.into())
        );
        assert_eq!(id(&format!("0::/kubepods/pod1f0e-aa/{A}")), Some(A.into()));
        assert_eq!(id(&format!("0::/docker/{A}")), Some(A.into()));
        // The pod level holds the pause container's siblings, not a container.
        assert_eq!(id("0::/kubepods/besteffort/pod1f0e-aa-bb"), None);
        assert_eq!(id("0::/kubepods/burstable"), None);
    }

    #[test]
    fn systemd_paths() {
        let slice = "/kubepods.slice/kubepods-burstable.slice/\
                     kubepods-burstable-pod1f0e_7c1a_4b2e_9d3f_0a1b2c3d4e5f.slice";
        assert_eq!(
            id(&format!("0::{slice}/cri-containerd-{A}.scope")),
            Some(A.into())
        );
        assert_eq!(id(&format!("0::{slice}/crio-{A}.scope")), Some(A.into()));
        assert_eq!(
            id(&format!("0::/system.slice/docker-{A}.scope")),
            Some(A.into())
        );
        assert_eq!(
            id(&format!("0::/machine.slice/libpod-{A}.scope")),
            Some(A.into())
        );
        // CRI-O under the cgroupfs driver: its prefix, no `.scope`.
        assert_eq!(
            id(&format!("0::/kubepods/besteffort/pod1f0e/crio-{A}")),
            Some(A.into())
        );
        assert_eq!(
            id(&format!(
                "5:memory:/kubepods/burstable/pod1f0e/crio-conmon-{A}"
            )),
            None
        );
        // CRI-O's monitor, the runtimes' own services, the pod level, the root.
        assert_eq!(id(&format!("0::{slice}/crio-conmon-{A}.scope")), None);
        assert_eq!(id("0::/system.slice/containerd.service"), None);
        assert_eq!(id("0::/system.slice/crio.service"), None);
        assert_eq!(id(&format!("0::{slice}")), None);
        assert_eq!(id("0::/"), None);
        assert_eq!(id(&format!("0::/system.slice/other-{A}.scope")), None);
        assert_eq!(id(&format!("0::/system.slice/docker-{A}.service")), None);
    }

    #[test]
    fn only_a_whole_lowercase_id_counts() {
        assert_eq!(id(&format!("0::/docker/{}", &A[1..])), None);
        assert_eq!(id(&format!("0::/docker/{A}0")), None);
        assert_eq!(id(&format!("0::/docker/{}", A.to_uppercase())), None);
        assert_eq!(id(&format!("0::/kubepods/crio-{}.scope", &A[1..])), None);
        assert_eq!(id(&format!("0::/docker/g{}", &A[1..])), None);
        // Lines without an ID, and lines that are not lines of a cgroup file.
        assert_eq!(id(""), None);
        assert_eq!(id(&format!("garbage {A}\n\n::\n")), None);
    }

    #[test]
    fn cgroup_v1_files() {
        let file = format!(
            "12:pids:/kubepods/burstable/pod1f0e/{A}\n\
             11:cpu,cpuacct:/kubepods/burstable/pod1f0e/{A}\n\
             10:memory:/kubepods/burstable/pod1f0e/{A}\n\
             3:rdma:/\n\
             1:name=systemd:/kubepods/burstable/pod1f0e/{A}\n"
        );
        assert_eq!(id(&file), Some(A.into()));
        // Controllers that disagree cannot be trusted.
        let file = format!("4:memory:/docker/{A}\n3:pids:/docker/{B}\n");
        assert_eq!(id(&file), None);
        // The v2 line decides when it names one (a hybrid host).
        let file = format!("4:memory:/docker/{B}\n1:name=systemd:/\n0::/docker/{A}\n");
        assert_eq!(id(&file), Some(A.into()));
        let file = format!("4:memory:/docker/{B}\n1:name=systemd:/docker/{B}\n0::/\n");
        assert_eq!(id(&file), Some(B.into()));
        // This machine's kind of file: a 32-hex name is not a container.
        let file = "4:memory:/process_api/3007582d7f0917924089a3bced434060\n0::/\n";
        assert_eq!(id(file), None);
    }

    #[test]
    fn nested_paths_name_the_container_the_node_runtime_knows() {
        // Docker in a pod's container: the pod's container.
        let file = format!("0::/kubepods/besteffort/pod1f0e/{A}/docker/{B}");
        assert_eq!(id(&file), Some(A.into()));
        // A node that is itself a container (kind): the pod's container, not the node.
        let file = format!("0::/docker/{B}/kubepods/besteffort/pod1f0e/{A}");
        assert_eq!(id(&file), Some(A.into()));
        // Docker in Docker: the outer one, which the node's Docker knows.
        assert_eq!(id(&format!("0::/docker/{A}/docker/{B}")), Some(A.into()));
        // systemd in a container: its units are inside the container's scope.
        let file = format!("0::/kubepods.slice/cri-containerd-{A}.scope/init.scope");
        assert_eq!(id(&file), Some(A.into()));
        // A runtime that puts the container's processes one level down.
        let file = format!("0::/kubepods.slice/crio-{A}.scope/container");
        assert_eq!(id(&file), Some(A.into()));
        // Seen from another cgroup namespace.
        let file = format!("0::/../../kubepods-besteffort-pod1.slice/crio-{A}.scope");
        assert_eq!(id(&file), Some(A.into()));
    }

    /// A stat line with the fields a row reads set, the others plausible.
    fn stat_line(pid: u32, comm: &str, state: char, cpu: (u64, u64), start: u64) -> String {
        let (utime, stime) = cpu;
        format!(
            "{pid} ({comm}) {state} 1 {pid} {pid} 0 -1 4194560 100 0 0 0 {utime} {stime} 0 0 \
             20 0 1 0 {start} 10485760 256 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 0 \
             0 0 0 0 0 0 0 0 0 0 0 0 0\n"
        )
    }

    #[test]
    fn stat_of_a_real_process() {
        let line = b"3905 (cat) R 3897 3897 3012 0 -1 4194304 96 0 0 0 7 3 0 0 20 0 1 0 \
                     753036 3133440 359 18446744073709551615 94202984411136 94202984431017 \
                     140725694223504 0 0 0 0 0 0 0 0 0 17 0 0 0 0 0 0 94202984447024 \
                     94202984448640 94203717189632 140725694225068 140725694225088 \
                     140725694225088 140725694226411 0\n";
        let stat = parse_stat(line).unwrap();
        assert_eq!(
            stat,
            Stat {
                comm: "cat".into(),
                state: 'R',
                ppid: 3897,
                pgrp: 3897,
                session: 3012,
                tty_nr: 0,
                tpgid: -1,
                cpu_ticks: 10,
                nice: 0,
                threads: 1,
                start_ticks: 753_036,
                vsize_bytes: 3_133_440,
            }
        );
    }

    #[test]
    fn stat_with_a_hostile_command_name() {
        let line = stat_line(1234, "a) R 1 (b", 'S', (1, 2), 5);
        let stat = parse_stat(line.as_bytes()).unwrap();
        assert_eq!(stat.comm, "a) R 1 (b");
        assert_eq!((stat.state, stat.ppid, stat.cpu_ticks), ('S', 1, 3));
        let stat = parse_stat(stat_line(7, ") )(", 'S', (0, 0), 5).as_bytes()).unwrap();
        assert_eq!(stat.comm, ") )(");
        let stat = parse_stat(stat_line(7, "", 'S', (0, 0), 5).as_bytes()).unwrap();
        assert_eq!(stat.comm, "");
        // Non-UTF-8 and control characters in the name.
        let mut line = b"7 (\xff\x1b[2J) ".to_vec();
        line.extend_from_slice(
            stat_line(7, "x", 'S', (0, 0), 5)
                .split_once(") ")
                .unwrap()
                .1
                .as_bytes(),
        );
        assert_eq!(parse_stat(&line).unwrap().comm, "\u{fffd}?[2J");
    }

    #[test]
    fn malformed_stat_lines() {
        let good = stat_line(7, "x", 'S', (0, 0), 5);
        for bad in [
            String::new(),
            "7 x S 1".to_string(),
            "7 (x S 1 1 1".to_string(),
            "7 )x( S 1 1 1".to_string(),
            good.replace(" S 1 ", " 9 1 "),
            good.replace(" S 1 ", " SS 1 "),
            good.replace(" 10485760 ", " -1 "),
            good.split(" 10485760").next().unwrap().to_string(),
            good.replace(" 1 7 ", " x 7 "),
            // utime + stime past u64.
            stat_line(7, "x", 'S', (u64::MAX, 1), 5),
        ] {
            assert_eq!(parse_stat(bad.as_bytes()), None, "{bad:?}");
        }
        assert!(parse_stat(good.as_bytes()).is_some());
    }

    #[test]
    fn status_fields() {
        let text = "Name:\tsh\nUmask:\t0022\nState:\tS (sleeping)\nUid:\t1000\t0\t0\t0\n\
                    Gid:\t0\t0\t0\t0\nVmLck:\t      8 kB\nVmRSS:\t    2048 kB\n";
        assert_eq!(
            parse_status(text),
            Some(Status {
                euid: 0,
                rss_kib: 2048,
                locked_kib: 8
            })
        );
        // A kernel thread has no memory lines.
        let text = "Name:\tkthreadd\nUid:\t0\t0\t0\t0\n";
        assert_eq!(
            parse_status(text),
            Some(Status {
                euid: 0,
                rss_kib: 0,
                locked_kib: 0
            })
        );
        assert_eq!(parse_status("Name:\tx\n"), None);
        assert_eq!(parse_status("Uid:\t0\n"), None);
        assert_eq!(parse_status("Uid:\t0\t-1\t0\t0\n"), None);
    }

    #[test]
    fn passwd_names() {
        let users = parse_passwd(
            "root:x:0:0:root:/root:/bin/sh\n# comment\nbad line\ntoor:x:0:0::/:/bin/sh\n\
             alice:x:1000:1000::/home/alice:/bin/sh\nbob:x:nope:1:::\n\n",
        );
        assert_eq!(users.get(&0).map(String::as_str), Some("root"));
        assert_eq!(users.get(&1000).map(String::as_str), Some("alice"));
        assert_eq!(users.len(), 2);
    }

    #[test]
    fn terminals() {
        assert_eq!(tty_name(0), "?");
        assert_eq!(tty_name(136 << 8), "pts/0");
        assert_eq!(tty_name((136 << 8) | 3), "pts/3");
        assert_eq!(tty_name((137 << 8) | 44), "pts/300");
        // Minors past 255 keep their high bits above the major.
        assert_eq!(tty_name((136 << 8) | 5 | (1 << 20)), "pts/261");
        assert_eq!(tty_name((4 << 8) | 1), "tty1");
        assert_eq!(tty_name((4 << 8) | 64), "ttyS0");
        assert_eq!(tty_name((4 << 8) | 67), "ttyS3");
        assert_eq!(tty_name((5 << 8) | 1), "console");
        assert_eq!(tty_name(188 << 8), "?");
        assert_eq!(tty_name(-1), "?");
    }

    fn host() -> Host {
        Host {
            uptime_secs: Some(1000),
            boot_time: Some(BOOT),
            mem_total_kib: Some(1_000_000),
            now: BOOT + 1000,
            users: HashMap::from([(0, "root".to_string())]),
        }
    }

    fn status(euid: u32, rss_kib: u64) -> Status {
        Status {
            euid,
            rss_kib,
            locked_kib: 0,
        }
    }

    #[test]
    fn a_row_as_ps_aux_prints_it() {
        // Started 500 s after boot, 30 s of CPU in the 500 s since.
        let stat = parse_stat(stat_line(42, "nginx", 'S', (2000, 1000), 50_000).as_bytes());
        let row = row(
            42,
            &stat.unwrap(),
            &status(0, 2048),
            b"nginx\0-g\0daemon off;\0",
            &host(),
        );
        assert_eq!(
            serde_json::to_string(&row).unwrap(),
            r#"{"USER":"root","PID":"42","PPID":"1","%CPU":"6.0","%MEM":"0.2","VSZ":"10240","RSS":"2048","TTY":"?","STAT":"Ss","START":"18:48","TIME":"0:30","COMMAND":"nginx -g daemon off;"}"#
        );
        assert_eq!((row.pid, row.ppid), (42, 1));
        assert_eq!(row.get("%CPU"), Some("6.0"));
        assert_eq!(row.get("NI"), None);
        // No passwd entry: the number.
        let stat = parse_stat(stat_line(43, "x", 'S', (0, 0), 50_000).as_bytes()).unwrap();
        assert_eq!(row_of(&stat, status(1000, 0)).get("USER"), Some("1000"));
    }

    fn row_of(stat: &Stat, status: Status) -> ProcessRow {
        row(43, stat, &status, b"x\0", &host())
    }

    #[test]
    fn percentages_truncate_like_ps() {
        let mut stat = parse_stat(stat_line(43, "x", 'R', (0, 0), 0).as_bytes()).unwrap();
        // 1000 s old, 19.99 s of CPU: 1.999 % → 1.9.
        stat.cpu_ticks = 1999;
        assert_eq!(percent_cpu(&stat, Some(1000)), "1.9");
        // Two cores for its whole life: 200 %, printed without the decimal.
        stat.cpu_ticks = 200_000;
        assert_eq!(percent_cpu(&stat, Some(1000)), "200");
        // Started this second, or uptime unknown or behind: 0.0.
        stat.start_ticks = 100_050;
        assert_eq!(percent_cpu(&stat, Some(1000)), "0.0");
        assert_eq!(percent_cpu(&stat, None), "0.0");
        assert_eq!(percent_mem(999, Some(1_000_000)), "0.0");
        assert_eq!(percent_mem(1_000_000, Some(1_000_000)), "100");
        assert_eq!(percent_mem(123_456, Some(1_000_000)), "12.3");
        assert_eq!(percent_mem(5, None), "0.0");
        assert_eq!(percent_mem(u64::MAX, Some(1)), (u64::MAX / 10).to_string());
    }

    #[test]
    fn stat_flags() {
        let mut base = parse_stat(stat_line(43, "x", 'S', (0, 0), 0).as_bytes()).unwrap();
        base.session = 1;
        let flags = |f: &dyn Fn(&mut Stat), locked_kib: u64| {
            let mut stat = base.clone();
            f(&mut stat);
            stat_column(
                43,
                &stat,
                &Status {
                    euid: 0,
                    rss_kib: 0,
                    locked_kib,
                },
            )
        };
        assert_eq!(flags(&|_| {}, 0), "S");
        assert_eq!(flags(&|s| s.session = 43, 0), "Ss");
        assert_eq!(flags(&|s| s.nice = -20, 0), "S<");
        assert_eq!(flags(&|s| s.nice = 19, 0), "SN");
        assert_eq!(flags(&|s| s.threads = 4, 0), "Sl");
        assert_eq!(flags(&|s| s.tpgid = s.pgrp, 0), "S+");
        assert_eq!(
            flags(
                &|s| {
                    s.state = 'R';
                    s.nice = -1;
                    s.session = 43;
                    s.threads = 2;
                    s.tpgid = s.pgrp;
                },
                4
            ),
            "R<Lsl+"
        );
        assert_eq!(flags(&|s| s.state = 'I', 0), "I");
    }

    #[test]
    fn start_and_time() {
        let mut h = host();
        // 500 s after boot, seen 1000 s after boot.
        assert_eq!(start_column(50_000, &h), "18:48");
        h.now = BOOT + 2 * 86_400;
        assert_eq!(start_column(50_000, &h), "Dec01");
        h.now = BOOT + 40 * 86_400;
        assert_eq!(start_column(50_000, &h), "2026");
        // A clock behind the process's start, and a hostile boot time.
        h.now = BOOT - 3600;
        assert_eq!(start_column(50_000, &h), "18:48");
        h.now = BOOT;
        h.boot_time = Some(i64::MAX);
        assert_eq!(start_column(u64::MAX, &h), "23:59");
        h.boot_time = None;
        assert_eq!(start_column(50_000, &h), "?");

        assert_eq!(time_column(0), "0:00");
        assert_eq!(time_column(399), "0:03");
        assert_eq!(time_column(6100), "1:01");
        assert_eq!(time_column(100 * 3600 * 100), "6000:00");
    }

    #[test]
    fn commands() {
        let stat = |comm: &str, state: char| {
            parse_stat(stat_line(43, comm, state, (0, 0), 0).as_bytes()).unwrap()
        };
        assert_eq!(command(b"", &stat("kthreadd", 'S')), "[kthreadd]");
        assert_eq!(command(b"", &stat("sh", 'Z')), "[sh] <defunct>");
        assert_eq!(command(b"\0\0", &stat("sh", 'S')), "[sh]");
        assert_eq!(
            command(b"/bin/sh\0-c\0echo hi\0", &stat("sh", 'S')),
            "/bin/sh -c echo hi"
        );
        // A process that rewrote its command line without NULs.
        assert_eq!(
            command(b"postgres: writer", &stat("postgres", 'S')),
            "postgres: writer"
        );
        assert_eq!(
            command(b"evil\x1b]0;x\x07\xff", &stat("e", 'S')),
            "evil?]0;x?\u{fffd}"
        );
    }

    /// A `/proc` of its own in a temporary directory.
    struct Fixture {
        root: PathBuf,
    }

    impl Fixture {
        fn new(name: &str) -> Fixture {
            let root =
                std::env::temp_dir().join(format!("ci-procfs-{name}-{}", std::process::id()));
            let _ = fs::remove_dir_all(&root);
            fs::create_dir_all(&root).unwrap();
            let fixture = Fixture { root };
            fixture.write("uptime", "1000.73 1900.00\n");
            fixture.write(
                "stat",
                &format!("cpu  1 2 3 4\nintr 5 6\nbtime {BOOT}\nprocesses 9\n"),
            );
            fixture.write("meminfo", "MemTotal:        1000000 kB\nMemFree: 5 kB\n");
            fixture.write(
                "passwd",
                "root:x:0:0::/root:/bin/sh\nalice:x:1000:1000::/:/bin/sh\n",
            );
            fs::create_dir_all(fixture.root.join("self")).unwrap();
            fs::create_dir_all(fixture.root.join("1a")).unwrap();
            fixture
        }

        fn write(&self, path: &str, text: &str) {
            let path = self.root.join(path);
            fs::create_dir_all(path.parent().unwrap()).unwrap();
            fs::write(path, text).unwrap();
        }

        fn process(&self, pid: u32, uid: u32, comm: &str, cmdline: &str, cgroup: &str) {
            self.write(
                &format!("{pid}/stat"),
                &stat_line(pid, comm, 'S', (100, 0), 50_000),
            );
            self.write(
                &format!("{pid}/status"),
                &format!("Name:\t{comm}\nUid:\t{uid}\t{uid}\t{uid}\t{uid}\nVmRSS:\t 1000 kB\n"),
            );
            self.write(&format!("{pid}/cmdline"), cmdline);
            self.write(&format!("{pid}/cgroup"), cgroup);
            // What a scan must never show.
            self.write(&format!("{pid}/environ"), "PASSWORD=hunter2\0");
        }

        fn options(&self, max_per_container: usize) -> ScanOptions {
            ScanOptions {
                max_per_container,
                passwd: Some(self.root.join("passwd")),
            }
        }
    }

    impl Drop for Fixture {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.root);
        }
    }

    fn scan_fixture(f: &Fixture, max_per_container: usize) -> ProcessTable {
        let host = Host::read_at(&f.root, Some(&f.root.join("passwd")), BOOT + 1000);
        scan_with(&f.root, &f.options(max_per_container), &host).unwrap()
    }

    fn assert_counts_add_up(t: &ProcessTable) {
        let in_containers: usize = t
            .by_container
            .values()
            .map(|c| c.rows.len() + c.omitted)
            .sum();
        assert_eq!(
            t.scanned,
            t.vanished + t.unreadable + t.outside_containers + in_containers
        );
    }

    #[test]
    fn scan_of_a_fixture() {
        let f = Fixture::new("scan");
        let crio = format!("0::/kubepods.slice/kubepods-pod1.slice/crio-{A}.scope\n");
        let v1 = format!("2:memory:/kubepods/pod2/{B}\n1:name=systemd:/kubepods/pod2/{B}\n");
        f.process(1, 0, "systemd", "/sbin/init\0", "0::/init.scope\n");
        for pid in [14, 10, 12, 11, 13] {
            f.process(pid, 1000, "app", &format!("app\0--worker={pid}\0"), &crio);
        }
        f.process(
            30,
            0,
            "conmon",
            "conmon\0",
            &crio.replace("crio-", "crio-conmon-"),
        );
        f.process(20, 0, "sh", "", &v1);
        f.write("20/stat", &stat_line(20, "sh", 'Z', (0, 0), 50_000));
        // Exited after its cgroup was read; exited before anything was read.
        f.process(21, 0, "gone", "gone\0", &v1);
        fs::remove_file(f.root.join("21/stat")).unwrap();
        fs::create_dir_all(f.root.join("23")).unwrap();
        // Garbage.
        f.process(22, 0, "bad", "bad\0", &v1);
        f.write("22/stat", "22 (bad) S not numbers at all\n");

        let t = scan_fixture(&f, 3);
        assert_eq!(t.scanned, 11);
        assert_eq!((t.outside_containers, t.vanished, t.unreadable), (2, 2, 1));
        assert_counts_add_up(&t);
        assert_eq!(t.by_container.len(), 2);
        let a = &t.by_container[A];
        assert_eq!(a.omitted, 2);
        let pids: Vec<u32> = a.rows.iter().map(|r| r.pid).collect();
        assert_eq!(pids, [10, 11, 12]);
        let row = &a.rows[0];
        assert_eq!(row.get("USER"), Some("alice"));
        assert_eq!(row.get("COMMAND"), Some("app --worker=10"));
        assert_eq!(row.get("%CPU"), Some("0.2"));
        assert_eq!(row.get("%MEM"), Some("0.1"));
        assert_eq!(row.get("START"), Some("18:48"));
        assert_eq!(row.get("TIME"), Some("0:01"));
        let b = &t.by_container[B];
        assert_eq!((b.rows.len(), b.omitted), (1, 0));
        assert_eq!(b.rows[0].get("COMMAND"), Some("[sh] <defunct>"));
        assert_eq!(b.rows[0].get("STAT"), Some("Zs"));

        let json = serde_json::to_string(&t).unwrap();
        assert!(json.contains("app --worker=12"));
        assert!(!json.contains("hunter2"), "{json}");

        // A cap of nothing keeps the count alone.
        let t = scan_fixture(&f, 0);
        assert_eq!(
            (t.by_container[A].rows.len(), t.by_container[A].omitted),
            (0, 5)
        );
        assert_counts_add_up(&t);
        // Without a passwd file, and without the host's files: numbers and blanks.
        fs::remove_file(f.root.join("passwd")).unwrap();
        for file in ["uptime", "stat", "meminfo"] {
            fs::remove_file(f.root.join(file)).unwrap();
        }
        let t = scan_fixture(&f, 10);
        let row = &t.by_container[A].rows[0];
        let cells: Vec<&str> = row.columns().map(|(_, v)| v).collect();
        assert_eq!(
            cells,
            [
                "1000",
                "10",
                "1",
                "0.0",
                "0.0",
                "10240",
                "1000",
                "?",
                "Ss",
                "?",
                "0:01",
                "app --worker=10"
            ]
        );
    }

    #[test]
    fn a_missing_or_unreadable_root_is_the_only_error() {
        let f = Fixture::new("root");
        let missing = f.root.join("nothing");
        let e = scan(&missing, &ScanOptions::default()).unwrap_err();
        assert_eq!(e.path, missing);
        assert_eq!(e.source.kind(), io::ErrorKind::NotFound);
        assert!(scan(&f.root.join("stat"), &ScanOptions::default()).is_err());
        // Empty: no processes, no error.
        let t = scan(&f.root, &ScanOptions::default()).unwrap();
        assert_eq!(t.scanned, 0);
    }

    #[test]
    fn scan_of_this_machine() {
        let proc_root = Path::new("/proc");
        let table = scan(proc_root, &ScanOptions::default()).unwrap();
        assert!(table.scanned > 0);
        assert_counts_add_up(&table);
        let me = std::process::id();
        let own_cgroup = fs::read_to_string(format!("/proc/{me}/cgroup")).unwrap();
        match container_id(&own_cgroup) {
            Some(id) => assert!(table.by_container[&id].rows.iter().any(|r| r.pid == me)),
            None => assert!(table.outside_containers > 0),
        }
        let host = Host::read(proc_root, Some(Path::new("/etc/passwd")));
        let row = read_process(proc_root, me, &host).unwrap();
        assert_eq!(row.get("PID"), Some(me.to_string().as_str()));
        assert!(row.get("RSS").unwrap().parse::<u64>().unwrap() > 0);
        assert!(row.get("VSZ").unwrap().parse::<u64>().unwrap() > 0);
        assert!(matches!(
            row.get("STAT").unwrap().chars().next(),
            Some('R' | 'S' | 'D')
        ));
        let command = row.get("COMMAND").unwrap();
        assert!(
            !command.is_empty() && !command.starts_with('['),
            "{command}"
        );
        assert!(matches!(
            read_process(proc_root, u32::MAX, &host),
            Err(ProcessError::Vanished)
        ));
    }

    #[test]
    fn the_hosts_namespace_is_told_by_kthreadd() {
        let dir = std::env::temp_dir().join(format!("procfs-kthreadd-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(dir.join("2")).unwrap();
        fs::write(dir.join("2/stat"), "2 (kthreadd) S 0 0 0 0 -1 2129984 0 0").unwrap();
        assert!(is_kthreadd(&dir.join("2")));
        fs::write(dir.join("2/stat"), "2 (kthreadd) S 1 0 0 0 -1 2129984 0 0").unwrap();
        assert!(
            !is_kthreadd(&dir.join("2")),
            "a process named so, under init"
        );
        fs::write(dir.join("2/stat"), "2 (sh) S 0 0").unwrap();
        assert!(!is_kthreadd(&dir.join("2")));
        assert!(!is_kthreadd(&dir.join("3")), "no such process");
        let _ = fs::remove_dir_all(&dir);
    }
}
