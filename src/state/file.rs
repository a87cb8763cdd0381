//! The local state file: atomic replacement, a backup of the state before this command, and
//! owner-only permissions.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use super::State;
use async_trait::async_trait;

use super::backend::StateBackend;
use super::lock::{LockInfo, StateLock};

/// Why the state could not be read, written or locked.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum StateError {
    /// Reading or writing the file failed.
    #[error("state {path}: {source}")]
    #[diagnostic(code(cruddur::state::io))]
    Io { path: String, source: std::io::Error },
    /// The file is not a state this build can read.
    #[error("state {path} is unreadable: {reason}")]
    #[diagnostic(code(cruddur::state::corrupt), help("restore it from {path}.backup, or move it away to start over"))]
    Corrupt { path: String, reason: String },
    /// Another command holds the lock.
    #[error("state {path} is locked by another command: {holder}")]
    #[diagnostic(code(cruddur::state::locked), help("{hint}"))]
    Locked { path: String, holder: String, hint: String },
    /// force-unlock could not remove the lock.
    #[error("cannot unlock state {path}: {reason}")]
    #[diagnostic(code(cruddur::state::unlock))]
    Unlock { path: String, reason: String },
    /// The remote state changed since this command read it (a writer that ignored the lock).
    #[error("state {path} was changed by someone else since it was read")]
    #[diagnostic(code(cruddur::state::conflict), help("nothing was overwritten; run the command again"))]
    Conflict { path: String },
    /// The remote store refused or failed a request.
    #[error("state {path}: {operation} failed: {code}: {message}")]
    #[diagnostic(code(cruddur::state::remote))]
    Remote { path: String, operation: &'static str, code: String, message: String },
}

/// A state file on the local disk.
pub struct LocalState {
    path: PathBuf,
    /// Set once the state as it was before this command has been copied to the backup.
    backed_up: std::sync::atomic::AtomicBool,
    /// The lock while this command holds it; dropping the store releases it too.
    held: std::sync::Mutex<Option<StateLock>>,
}

impl LocalState {
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self { path: path.into(), backed_up: Default::default(), held: Default::default() }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn io(&self, source: std::io::Error) -> StateError {
        StateError::Io { path: self.path.display().to_string(), source }
    }

    /// The stored state, or a new empty one if there is no file yet.
    pub fn load(&self) -> Result<State, StateError> {
        match fs::read_to_string(&self.path) {
            Ok(text) => State::from_json(&text)
                .map_err(|reason| StateError::Corrupt { path: self.path.display().to_string(), reason }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(State::new()),
            Err(e) => Err(self.io(e)),
        }
    }

    /// Takes the exclusive lock for `operation`; fails at once if another command holds it.
    pub fn lock(&self, operation: &str) -> Result<LockInfo, StateError> {
        if let Some(dir) = self.path.parent().filter(|d| !d.as_os_str().is_empty()) {
            fs::create_dir_all(dir).map_err(|e| self.io(e))?;
        }
        let lock = StateLock::acquire(&self.path, operation)?;
        let info = lock.info.clone();
        *self.held.lock().expect("not poisoned") = Some(lock);
        Ok(info)
    }

    /// Releases the lock this command holds.
    pub fn unlock(&self) {
        self.held.lock().expect("not poisoned").take();
    }

    /// Replaces the file with `state` atomically. The caller holds the lock.
    pub fn save(&self, state: &State) -> Result<(), StateError> {
        let dir = match self.path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
            _ => PathBuf::from("."),
        };
        fs::create_dir_all(&dir).map_err(|e| self.io(e))?;
        if !self.backed_up.swap(true, std::sync::atomic::Ordering::SeqCst) && self.path.exists() {
            let backup = backup_path(&self.path);
            let previous = fs::read(&self.path).map_err(|e| self.io(e))?;
            write_synced(&backup, &previous).map_err(|e| self.io(e))?;
        }
        let tmp = self.path.with_extension(format!("tmp.{}", std::process::id()));
        write_synced(&tmp, state.to_json().as_bytes()).map_err(|e| self.io(e))?;
        fs::rename(&tmp, &self.path).map_err(|e| self.io(e))?;
        // The rename is durable only once the directory entry is on disk.
        File::open(&dir).and_then(|d| d.sync_all()).map_err(|e| self.io(e))?;
        Ok(())
    }
}

#[async_trait]
impl StateBackend for LocalState {
    fn location(&self) -> String {
        self.path.display().to_string()
    }

    async fn load(&self) -> Result<State, StateError> {
        LocalState::load(self)
    }

    async fn lock(&self, operation: &str) -> Result<LockInfo, StateError> {
        LocalState::lock(self, operation)
    }

    async fn unlock(&self, _lock: &LockInfo) -> Result<(), StateError> {
        LocalState::unlock(self);
        Ok(())
    }

    async fn force_unlock(&self, id: &str) -> Result<LockInfo, StateError> {
        StateLock::force_unlock(&self.path, id).map_err(|reason| StateError::Unlock { path: self.location(), reason })
    }

    async fn save(&self, state: &State) -> Result<(), StateError> {
        LocalState::save(self, state)
    }
}

pub fn backup_path(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(".backup");
    PathBuf::from(name)
}

fn write_synced(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut opts = OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
    let mut f = opts.open(path)?;
    f.write_all(bytes)?;
    f.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn save_keeps_the_previous_state_as_backup() {
        // The first save of a command copies the old file aside; the new one replaces it whole.
        let dir = tempfile::tempdir().expect("tempdir");
        let store = LocalState::new(dir.path().join("s.json"));
        store.lock("test").expect("lock");
        let mut s = store.load().expect("empty");
        s.serial = 1;
        store.save(&s).expect("save 1");
        drop(store);
        let store = LocalState::new(dir.path().join("s.json"));
        store.lock("test").expect("lock");
        s.serial = 2;
        store.save(&s).expect("save 2");
        assert_eq!(store.load().expect("reads").serial, 2);
        let backup = State::from_json(&fs::read_to_string(backup_path(store.path())).expect("backup")).expect("parses");
        assert_eq!(backup.serial, 1);
    }

    #[cfg(unix)]
    #[test]
    fn state_file_is_private_to_its_owner() {
        // State can hold secrets, so it is created with mode 0600.
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().expect("tempdir");
        let store = LocalState::new(dir.path().join("s.json"));
        store.lock("test").expect("lock");
        store.save(&State::new()).expect("save");
        let mode = fs::metadata(store.path()).expect("exists").permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    #[test]
    fn corrupt_state_is_an_error_not_an_empty_state() {
        // A truncated file must never be mistaken for "nothing is managed".
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("s.json");
        fs::write(&path, "{\"version\": 1, \"ser").expect("write");
        assert!(matches!(LocalState::new(&path).load(), Err(StateError::Corrupt { .. })));
    }
}
