//! The exclusive state lock: a lock file created only if absent, holding who took it, so a
//! second command fails at once with a message naming the holder.

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use super::file::StateError;

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
}

impl LockInfo {
    pub fn new(operation: &str) -> Self {
        Self {
            id: uuid::Uuid::new_v4().to_string(),
            pid: std::process::id(),
            host: gethostname::gethostname().to_string_lossy().into_owned(),
            operation: operation.to_string(),
            created: SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs()),
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

    /// True when the holder ran on this host and is no longer running.
    pub fn holder_is_gone(&self) -> bool {
        let here = gethostname::gethostname().to_string_lossy().into_owned();
        self.host == here && !Path::new(&format!("/proc/{}", self.pid)).exists()
    }
}

/// A held lock; dropping it releases it.
#[derive(Debug)]
pub struct StateLock {
    path: PathBuf,
    pub info: LockInfo,
}

impl StateLock {
    /// Creates `<state>.lock`; if it exists, reports its holder.
    pub fn acquire(state_path: &Path, operation: &str) -> Result<Self, StateError> {
        let path = lock_path(state_path);
        let info = LockInfo::new(operation);
        let created = OpenOptions::new().write(true).create_new(true).open(&path);
        match created {
            Ok(mut f) => {
                let body = serde_json::to_vec_pretty(&info).expect("lock info is plain data");
                f.write_all(&body)
                    .and_then(|_| f.sync_all())
                    .map_err(|source| StateError::Io { path: path.display().to_string(), source })?;
                Ok(Self { path, info })
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Err(locked(state_path, &path)),
            Err(source) => Err(StateError::Io { path: path.display().to_string(), source }),
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

fn locked(state_path: &Path, lock_path: &Path) -> StateError {
    let holder = fs::read_to_string(lock_path).ok().and_then(|t| serde_json::from_str::<LockInfo>(&t).ok());
    let (holder, hint) = match holder {
        Some(info) if info.holder_is_gone() => (
            format!("{} (that process is no longer running: the lock is stale)", info.describe()),
            format!("run `cruddur-infra force-unlock {}` to remove it", info.id),
        ),
        Some(info) => (info.describe(), "wait for it to finish, then run the command again".to_string()),
        None => (
            "unknown holder (the lock file is unreadable)".to_string(),
            format!("remove {} by hand if no command is running", lock_path.display()),
        ),
    };
    StateError::Locked { path: state_path.display().to_string(), holder, hint }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn second_lock_fails_naming_the_holder() {
        // While one lock is held, a second attempt fails at once and says who holds it.
        let dir = tempfile::tempdir().expect("tempdir");
        let state = dir.path().join("s.json");
        let first = StateLock::acquire(&state, "apply").expect("first");
        let err = StateLock::acquire(&state, "plan").expect_err("second is refused");
        let msg = err.to_string();
        assert!(msg.contains("apply by pid") && msg.contains(&first.info.id), "{msg}");
        drop(first);
        StateLock::acquire(&state, "plan").expect("free again after release");
    }

    #[test]
    fn force_unlock_needs_the_right_id() {
        // A wrong id leaves the lock alone; the right one removes it.
        let dir = tempfile::tempdir().expect("tempdir");
        let state = dir.path().join("s.json");
        let held = StateLock::acquire(&state, "apply").expect("lock");
        assert!(StateLock::force_unlock(&state, "nope").is_err());
        StateLock::force_unlock(&state, &held.info.id).expect("unlocks");
        StateLock::acquire(&state, "plan").expect("free");
    }
}
