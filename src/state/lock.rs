//! The exclusive state lock: a lock file created only if absent, holding who took it, so a
//! second command fails at once with a message naming the holder.
//!
//! *Guarantees*: a lock is taken over only when its holder is provably gone: it ran on this
//! host in this boot and its process no longer runs (or its pid now belongs to a process that
//! started later). Any other lock is reported with its holder, its age and the command that
//! clears it.

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use super::StateError;

/// Who holds a lock.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct LockInfo {
    /// Quoted by `force-unlock`.
    pub id: String,
    pub pid: u32,
    pub host: String,
    pub operation: String,
    /// Seconds since the Unix epoch.
    pub created: u64,
    /// The host's boot, where the system tells it: a pid means nothing across boots.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub boot_id: Option<String>,
    /// When the holder process started (Linux clock ticks since boot), to tell a reused pid.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub process_start: Option<u64>,
    /// Seconds within which the holder renews the lock (the S3 backend): a lock not renewed
    /// for this long is taken over from any host. None: a lock that lasts until released.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lease: Option<u64>,
    /// How often the holder renewed the lock: each renewal writes a different body, so a
    /// takeover conditioned on the version it read never replaces a lock renewed meanwhile.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub renewed: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

impl LockInfo {
    pub fn new(operation: &str) -> Self {
        Self {
            id: uuid::Uuid::new_v4().to_string(),
            pid: std::process::id(),
            host: gethostname::gethostname().to_string_lossy().into_owned(),
            operation: operation.to_string(),
            created: SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs()),
            boot_id: boot_id(),
            process_start: process_start(std::process::id()),
            lease: None,
            renewed: 0,
        }
    }

    /// `apply by pid 42 on host-a since 2026-11-28T00:00:00Z (3m 2s ago)`
    pub fn describe(&self) -> String {
        let created = UNIX_EPOCH + Duration::from_secs(self.created);
        let age = SystemTime::now().duration_since(created).unwrap_or_default();
        format!(
            "{} by pid {} on {} since {} ({} ago), lock id {}",
            self.operation,
            self.pid,
            self.host,
            humantime::format_rfc3339_seconds(created),
            humantime::format_duration(Duration::from_secs(age.as_secs())),
            self.id
        )
    }

    /// True only when the holder provably no longer runs: same host, same boot, and its pid is
    /// not running or belongs to a process started after it.
    pub fn holder_is_gone(&self) -> bool {
        let here = gethostname::gethostname().to_string_lossy().into_owned();
        let same_boot = matches!((&self.boot_id, boot_id()), (Some(theirs), Some(ours)) if *theirs == ours);
        if self.host != here || !same_boot {
            return false;
        }
        if !pid_running(self.pid) {
            return true;
        }
        matches!((self.process_start, process_start(self.pid)), (Some(theirs), Some(now)) if theirs != now)
    }
}

/// This boot's identity, where the system offers one (Linux, macOS).
fn boot_id() -> Option<String> {
    #[cfg(target_os = "linux")]
    let id = fs::read_to_string("/proc/sys/kernel/random/boot_id").ok();
    #[cfg(target_os = "macos")]
    let id = std::process::Command::new("sysctl")
        .args(["-n", "kern.bootsessionuuid"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned());
    #[cfg(not(any(target_os = "linux", target_os = "macos")))]
    let id: Option<String> = None;
    id.map(|s| s.trim().to_string()).filter(|s| !s.is_empty())
}

/// Whether a process with this pid exists (signal 0 probes without sending anything).
fn pid_running(pid: u32) -> bool {
    #[cfg(unix)]
    {
        use nix::errno::Errno;
        let Ok(pid) = i32::try_from(pid) else { return false };
        match nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None) {
            Ok(()) | Err(Errno::EPERM) => true,
            Err(_) => false,
        }
    }
    #[cfg(not(unix))]
    {
        let _ = pid;
        true
    }
}

/// When the process started: on Linux in clock ticks since boot (field 22 of
/// `/proc/PID/stat`), on macOS in microseconds since the epoch (the kernel's BSD process
/// info). Only ever compared with a value read on the same host, so the units need not agree.
fn process_start(pid: u32) -> Option<u64> {
    #[cfg(target_os = "linux")]
    {
        let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        // The command name (field 2) may hold spaces and parentheses: count from the last ')'.
        let rest = &stat[stat.rfind(')')? + 1..];
        rest.split_whitespace().nth(19)?.parse().ok()
    }
    #[cfg(target_os = "macos")]
    {
        let pid = libc::c_int::try_from(pid).ok()?;
        let mut info = std::mem::MaybeUninit::<libc::proc_bsdinfo>::zeroed();
        let size = libc::c_int::try_from(std::mem::size_of::<libc::proc_bsdinfo>()).ok()?;
        // SAFETY: the buffer is a zeroed `proc_bsdinfo` of exactly the size passed; the kernel
        // writes at most that many bytes and returns how many it wrote.
        let written = unsafe { libc::proc_pidinfo(pid, libc::PROC_PIDTBSDINFO, 0, info.as_mut_ptr().cast(), size) };
        if written != size {
            return None;
        }
        // SAFETY: the kernel filled the whole struct (checked above); every field is plain data.
        let info = unsafe { info.assume_init() };
        Some(info.pbi_start_tvsec * 1_000_000 + info.pbi_start_tvusec)
    }
    #[cfg(not(any(target_os = "linux", target_os = "macos")))]
    {
        let _ = pid;
        None
    }
}

/// A held lock; dropping it releases it.
#[derive(Debug)]
pub struct StateLock {
    path: PathBuf,
    pub info: LockInfo,
}

impl StateLock {
    /// Creates `<state>.lock`. If it exists and its holder is provably gone, takes it over and
    /// returns the dead holder too; otherwise reports the holder.
    pub fn acquire(state_path: &Path, operation: &str) -> Result<(Self, Option<LockInfo>), StateError> {
        let path = lock_path(state_path);
        match Self::create(&path, operation)? {
            Some(lock) => Ok((lock, None)),
            None => {
                let Some(dead) = read_info(&path).filter(LockInfo::holder_is_gone) else {
                    return Err(locked(state_path, &path));
                };
                // Move the dead holder's lock aside: of several commands doing this at once,
                // exactly one rename succeeds, and only that one goes on to take the lock.
                let aside = path.with_extension(format!("lock.stale-{}", uuid::Uuid::new_v4()));
                if fs::rename(&path, &aside).is_err() {
                    return Err(locked(state_path, &path));
                }
                let moved = read_info(&aside);
                let _ = fs::remove_file(&aside);
                if moved.as_ref() != Some(&dead) {
                    // A live command's lock was moved aside between our read and rename.
                    return Err(locked(state_path, &path));
                }
                match Self::create(&path, operation)? {
                    Some(lock) => Ok((lock, Some(dead))),
                    None => Err(locked(state_path, &path)),
                }
            }
        }
    }

    /// Creates the lock file; `None` if it exists.
    fn create(path: &Path, operation: &str) -> Result<Option<Self>, StateError> {
        let info = LockInfo::new(operation);
        let io = |source| StateError::Io { path: path.display().to_string(), source };
        match OpenOptions::new().write(true).create_new(true).open(path) {
            Ok(mut f) => {
                let body = serde_json::to_vec_pretty(&info).expect("lock info is plain data");
                f.write_all(&body).and_then(|_| f.sync_all()).map_err(io)?;
                Ok(Some(Self { path: path.to_path_buf(), info }))
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(None),
            Err(source) => Err(io(source)),
        }
    }

    /// Whether the lock file still holds this lock (`force-unlock` may have removed it, and
    /// another command taken the lock since).
    pub fn still_held(&self) -> Result<(), String> {
        match read_info(&self.path) {
            Some(now) if now.id == self.info.id => Ok(()),
            Some(now) => Err(format!("it was removed (`force-unlock`) and is now held by {}", now.describe())),
            None if self.path.exists() => Ok(()), // being written or unreadable: not provably lost
            None => Err("it was removed (`force-unlock`)".into()),
        }
    }

    /// Removes a lock by id, whoever holds it, for when its holder died.
    pub fn force_unlock(state_path: &Path, id: &str) -> Result<LockInfo, String> {
        let path = lock_path(state_path);
        let text = fs::read_to_string(&path).map_err(|_| format!("{} is not locked", state_path.display()))?;
        let info: LockInfo =
            serde_json::from_str(&text).map_err(|e| format!("{}: unreadable lock: {e}", path.display()))?;
        if info.id != id {
            return Err(format!("the lock on {} has id {}, not {id}", state_path.display(), info.id));
        }
        fs::remove_file(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        Ok(info)
    }
}

impl Drop for StateLock {
    fn drop(&mut self) {
        // Only remove the file if it is still ours (force-unlock may have handed it on).
        let ours = fs::read_to_string(&self.path)
            .ok()
            .and_then(|t| serde_json::from_str::<LockInfo>(&t).ok())
            .is_some_and(|i| i.id == self.info.id);
        if ours {
            let _ = fs::remove_file(&self.path);
        }
    }
}

fn lock_path(state_path: &Path) -> PathBuf {
    super::beside(state_path, ".lock")
}

fn read_info(lock_path: &Path) -> Option<LockInfo> {
    fs::read_to_string(lock_path).ok().and_then(|t| serde_json::from_str::<LockInfo>(&t).ok())
}

fn locked(state_path: &Path, lock_path: &Path) -> StateError {
    let held = read_info(lock_path);
    let lock_id = held.as_ref().map(|info| info.id.clone());
    let (holder, hint) = match held {
        Some(info) => (
            info.describe(),
            format!(
                "wait for it to finish; if it is no longer running (this host cannot tell), run \
                 `cruddur-infra force-unlock {}`",
                info.id
            ),
        ),
        None => (
            "unknown holder (the lock file is unreadable)".to_string(),
            format!("remove {} by hand if no command is running", lock_path.display()),
        ),
    };
    StateError::Locked { path: state_path.display().to_string(), holder, lock_id, hint }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn second_lock_fails_naming_the_holder() {
        // While one lock is held, a second attempt fails at once and says who holds it.
        let dir = tempfile::tempdir().expect("tempdir");
        let state = dir.path().join("s.json");
        let (first, _) = StateLock::acquire(&state, "apply").expect("first");
        let err = StateLock::acquire(&state, "plan").expect_err("second is refused");
        let msg = err.to_string();
        assert!(msg.contains("apply by pid") && msg.contains(&first.info.id), "{msg}");
        drop(first);
        StateLock::acquire(&state, "plan").expect("free again after release");
    }

    /// A lock file as a command that is no longer running would have left it.
    fn leave_lock(state: &Path, info: &LockInfo) {
        fs::write(lock_path(state), serde_json::to_vec(info).expect("json")).expect("write");
    }

    fn dead_holder() -> LockInfo {
        // A child that has exited and been reaped: its pid runs nothing.
        let mut child = std::process::Command::new("true").spawn().expect("true runs");
        let pid = child.id();
        child.wait().expect("reaped");
        LockInfo { pid, process_start: Some(1), ..LockInfo::new("apply") }
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn a_lock_whose_holder_died_on_this_host_is_taken_over_and_named() {
        // Same host, same boot, pid gone: the next command takes the lock and says whose it was.
        let dir = tempfile::tempdir().expect("tempdir");
        let state = dir.path().join("s.json");
        let dead = dead_holder();
        leave_lock(&state, &dead);
        let (lock, took_over) = StateLock::acquire(&state, "plan").expect("taken over");
        assert_eq!(took_over, Some(dead));
        assert_eq!(read_info(&lock_path(&state)).expect("ours").id, lock.info.id);
        assert_eq!(fs::read_dir(dir.path()).expect("dir").count(), 1, "nothing left aside");
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn a_reused_pid_does_not_keep_a_dead_holder_alive() {
        // The pid runs again (this test process), but it started at another time.
        let dir = tempfile::tempdir().expect("tempdir");
        let state = dir.path().join("s.json");
        let reused = LockInfo { process_start: Some(1), ..LockInfo::new("apply") };
        leave_lock(&state, &reused);
        let (_, took_over) = StateLock::acquire(&state, "plan").expect("taken over");
        assert_eq!(took_over.map(|i| i.id), Some(reused.id));
    }

    #[test]
    fn a_lock_from_another_host_or_boot_or_a_live_process_is_never_taken_over() {
        // Nothing proves those holders dead: the command stops and says how to clear the lock.
        let dir = tempfile::tempdir().expect("tempdir");
        let state = dir.path().join("s.json");
        let live = LockInfo::new("apply");
        let others = [
            LockInfo { host: "elsewhere".into(), ..dead_holder() },
            LockInfo { boot_id: Some("another-boot".into()), ..dead_holder() },
            LockInfo { boot_id: None, ..dead_holder() },
            live.clone(),
        ];
        for holder in others {
            leave_lock(&state, &holder);
            let msg = StateLock::acquire(&state, "plan").expect_err("refused").to_string();
            assert!(msg.contains(&holder.id), "{msg}");
            let err = StateLock::acquire(&state, "plan").expect_err("refused");
            let help = miette::Diagnostic::help(&err).map(|h| h.to_string()).unwrap_or_default();
            assert!(help.contains(&format!("cruddur-infra force-unlock {}", holder.id)), "{help}");
            assert!(msg.contains(" ago)"), "the age is shown: {msg}");
        }
    }

    #[test]
    fn force_unlock_needs_the_right_id() {
        // A wrong id leaves the lock alone; the right one removes it.
        let dir = tempfile::tempdir().expect("tempdir");
        let state = dir.path().join("s.json");
        let (held, _) = StateLock::acquire(&state, "apply").expect("lock");
        assert!(StateLock::force_unlock(&state, "nope").is_err());
        StateLock::force_unlock(&state, &held.info.id).expect("unlocks");
        StateLock::acquire(&state, "plan").expect("free");
    }
}
