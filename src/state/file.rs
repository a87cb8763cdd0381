//! The local state file: atomic replacement, a backup of the state before this command, and
//! owner-only permissions.
//!
//! During an apply each resource's change is appended to a journal beside the file
//! (`<state>.journal`, one JSON line, synced), so a change costs a write the size of that
//! resource whatever the size of the state; the whole file is rewritten once, at the end, and
//! the journal removed. After a crash the next `load` replays the journal's complete lines
//! whose serial is newer than the file's: nothing recorded is lost.
//!
//! With an encryption key ([`Codec`]) the file, its backup and each journal line are
//! envelopes: nothing of the state is on disk in plain text.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use super::{ResourceState, State};
use crate::addr::ResourceAddr;
use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use super::StateError;
use super::backend::{Acquired, StateBackend};
use super::encryption::{Codec, Envelope, Purpose};
use super::history::{self, Keeping};
use super::lock::{LockInfo, StateLock};

/// A state file on the local disk.
pub struct LocalState<'a> {
    path: PathBuf,
    /// How documents are stored: plain, or sealed with a KMS key.
    codec: Codec<'a>,
    /// Set once the state as it was before this command has been copied to the backup.
    backed_up: std::sync::atomic::AtomicBool,
    /// The lock while this command holds it; dropping the store releases it too.
    held: std::sync::Mutex<Option<StateLock>>,
    /// The journal, open for appending, once this command recorded a change.
    journal: std::sync::Mutex<Option<File>>,
    /// How many earlier states are kept in `<state>.history/`, and who writes.
    history: Keeping<'a>,
}

/// One line of the journal.
#[derive(Serialize, Deserialize)]
struct JournalEntry {
    /// The state the line belongs to (absent in journals written before lineages were kept).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    lineage: Option<String>,
    serial: u64,
    addr: ResourceAddr,
    /// The resource's new entry; absent once it was deleted.
    resource: Option<ResourceState>,
}

impl<'a> LocalState<'a> {
    /// A state stored in plain text.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self::with_codec(path, Codec::plain())
    }

    pub fn with_codec(path: impl Into<PathBuf>, codec: Codec<'a>) -> Self {
        Self {
            path: path.into(),
            codec,
            backed_up: Default::default(),
            held: Default::default(),
            journal: Default::default(),
            history: Keeping::default(),
        }
    }

    /// Keeps earlier states as `history` says.
    pub fn with_history(mut self, history: Keeping<'a>) -> Self {
        self.history = history;
        self
    }

    /// The folder earlier states are kept in: `<state>.history/`.
    pub fn history_dir(&self) -> PathBuf {
        super::beside(&self.path, ".history")
    }

    /// The serials of the earlier states kept, oldest first.
    pub fn kept(&self) -> Result<Vec<u64>, StateError> {
        let entries = match fs::read_dir(self.history_dir()) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(vec![]),
            Err(e) => return Err(self.io(e)),
        };
        let mut serials: Vec<u64> = entries
            .filter_map(|e| e.ok())
            .filter_map(|e| history::serial_of(&e.file_name().to_string_lossy()))
            .collect();
        serials.sort_unstable();
        Ok(serials)
    }

    /// An earlier state kept, by serial.
    pub async fn load_kept(&self, serial: u64) -> Result<Option<State>, StateError> {
        let path = self.history_dir().join(history::entry_name(serial));
        let stored = match fs::read(&path) {
            Ok(stored) => stored,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(self.io(e)),
        };
        let location = path.display().to_string();
        let text = self.codec.open(&stored, Purpose::State, &location).await?;
        State::from_json(&String::from_utf8_lossy(&text)).map(Some).map_err(|reason| StateError::Corrupt {
            hint: "an earlier state kept for `state history`".into(),
            path: location,
            reason,
        })
    }

    /// Keeps `previous` (the state this command started from, as stored, in the form this
    /// command stores) as an earlier state, re-stores the kept ones in that form when it
    /// changed (`state encrypt|decrypt`: no copy stays in the old form), and lets the oldest
    /// beyond the kept number go.
    async fn keep_history(&self, previous: &[u8], form_changed: bool) -> Result<(), StateError> {
        let dir = self.history_dir();
        let kept = self.kept()?;
        if self.history.keep == 0 && kept.is_empty() {
            return Ok(());
        }
        fs::create_dir_all(&dir).map_err(|e| self.io(e))?;
        if form_changed {
            for serial in &kept {
                let path = dir.join(history::entry_name(*serial));
                let location = path.display().to_string();
                let stored = fs::read(&path).map_err(|e| self.io(e))?;
                let plain = self.codec.open(&stored, Purpose::State, &location).await?;
                let sealed = self.codec.seal(&plain, Purpose::State, &location).await?;
                write_synced(&path, &sealed).map_err(|e| self.io(e))?;
            }
        }
        let mut serials = kept;
        if self.history.keep > 0 {
            let serial = history::serial_of_stored(&self.codec, previous, &self.path.display().to_string()).await?;
            write_synced(&dir.join(history::entry_name(serial)), previous).map_err(|e| self.io(e))?;
            serials.push(serial);
        }
        for gone in history::beyond(serials, self.history.keep) {
            match fs::remove_file(dir.join(history::entry_name(gone))) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(self.io(e)),
            }
        }
        File::open(&dir).and_then(|d| d.sync_all()).map_err(|e| self.io(e))
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn io(&self, source: std::io::Error) -> StateError {
        StateError::Io { path: self.path.display().to_string(), source }
    }

    /// The stored state, or a new empty one if there is no file yet, with any changes an
    /// interrupted apply journaled since the file was written.
    pub async fn load(&self) -> Result<State, StateError> {
        let location = self.path.display().to_string();
        let (mut state, fresh) = match fs::read(&self.path) {
            Ok(stored) => {
                let text = self.codec.open(&stored, Purpose::State, &location).await?;
                let text = String::from_utf8_lossy(&text);
                let state = State::from_json(&text).map_err(|reason| StateError::Corrupt {
                    hint: super::corrupt_hint(&location),
                    path: location.clone(),
                    reason,
                })?;
                (state, false)
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => (State::new(), true),
            Err(e) => return Err(self.io(e)),
        };
        match fs::read_to_string(self.journal_path()) {
            Ok(text) => {
                let lines = self.open_lines(&text).await?;
                self.replay(&mut state, &lines, fresh)?;
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(self.io(e)),
        }
        Ok(state)
    }

    /// The journal's complete lines (a last line without its newline was being written when
    /// the command died, and its change was never reported done), each opened, with its number.
    async fn open_lines(&self, text: &str) -> Result<Vec<(usize, String)>, StateError> {
        let complete = text.rfind('\n').map_or("", |end| &text[..end]);
        let location = self.journal_path().display().to_string();
        let mut out = Vec::new();
        for (n, line) in complete.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()) {
            let opened =
                self.codec.open(line.as_bytes(), Purpose::Journal, &format!("{location} line {}", n + 1)).await?;
            out.push((n + 1, String::from_utf8_lossy(&opened).into_owned()));
        }
        Ok(out)
    }

    pub fn journal_path(&self) -> PathBuf {
        super::beside(&self.path, ".journal")
    }

    /// Applies the journal lines newer than `state`. A line of another state (another
    /// lineage) is refused; when there is no state file yet (the first apply died), the
    /// journal's lineage is the state's.
    fn replay(&self, state: &mut State, lines: &[(usize, String)], fresh: bool) -> Result<(), StateError> {
        let corrupt = |reason: String| {
            let path = self.journal_path().display().to_string();
            StateError::Corrupt { hint: super::corrupt_hint(&path), path, reason }
        };
        let mut lineage_known = !fresh;
        for (n, line) in lines {
            let entry: JournalEntry = serde_json::from_str(line).map_err(|e| corrupt(format!("line {n}: {e}")))?;
            match &entry.lineage {
                Some(lineage) if !lineage_known => {
                    state.lineage = lineage.clone();
                    lineage_known = true;
                }
                Some(lineage) if *lineage != state.lineage => {
                    return Err(corrupt(format!(
                        "line {n} belongs to another state (lineage {lineage}, not {}); move the journal away if \
                         that state is gone",
                        state.lineage
                    )));
                }
                _ => {}
            }
            if entry.serial <= state.serial {
                continue; // already in the file
            }
            state.serial = entry.serial;
            match entry.resource {
                Some(r) => state.resources.insert(entry.addr, r),
                None => state.resources.remove(&entry.addr),
            };
        }
        Ok(())
    }

    /// Appends one change to the journal and syncs it. The caller holds the lock.
    pub async fn record(
        &self,
        state: &State,
        addr: &ResourceAddr,
        entry: Option<&ResourceState>,
    ) -> Result<(), StateError> {
        let line = JournalEntry {
            lineage: Some(state.lineage.clone()),
            serial: state.serial,
            addr: addr.clone(),
            resource: entry.cloned(),
        };
        let plain = serde_json::to_vec(&line).expect("state is plain JSON data");
        let location = self.journal_path().display().to_string();
        let mut bytes = self.codec.seal(&plain, Purpose::Journal, &location).await?;
        bytes.push(b'\n');
        self.append(&bytes)
    }

    fn append(&self, bytes: &[u8]) -> Result<(), StateError> {
        let journal_err = |source| StateError::Io { path: self.journal_path().display().to_string(), source };
        let mut journal = self.journal.lock().expect("not poisoned");
        if journal.is_none() {
            if let Some(dir) = self.path.parent().filter(|d| !d.as_os_str().is_empty()) {
                fs::create_dir_all(dir).map_err(|e| self.io(e))?;
            }
            let mut opts = OpenOptions::new();
            opts.append(true).create(true);
            #[cfg(unix)]
            std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
            *journal = Some(opts.open(self.journal_path()).map_err(journal_err)?);
        }
        let file = journal.as_mut().expect("opened above");
        file.write_all(bytes).and_then(|()| file.sync_data()).map_err(journal_err)
    }

    /// Takes the exclusive lock for `operation`; fails at once if another command holds it,
    /// unless that command provably died.
    pub fn lock(&self, operation: &str) -> Result<Acquired, StateError> {
        if let Some(dir) = self.path.parent().filter(|d| !d.as_os_str().is_empty()) {
            fs::create_dir_all(dir).map_err(|e| self.io(e))?;
        }
        let (lock, took_over) = StateLock::acquire(&self.path, operation)?;
        let info = lock.info.clone();
        *self.held.lock().expect("not poisoned") = Some(lock);
        let took_over = took_over.map(|holder| super::TookOver { holder, why: super::Takeover::HolderGone });
        Ok(Acquired { info, took_over })
    }

    /// Releases the lock this command holds.
    pub fn unlock(&self) {
        self.held.lock().expect("not poisoned").take();
    }

    /// Replaces the file with `state` atomically. The caller holds the lock.
    pub async fn save(&self, state: &State) -> Result<(), StateError> {
        let location = self.path.display().to_string();
        let dir = match self.path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
            _ => PathBuf::from("."),
        };
        fs::create_dir_all(&dir).map_err(|e| self.io(e))?;
        if !self.backed_up.swap(true, std::sync::atomic::Ordering::SeqCst) && self.path.exists() {
            let backup = backup_path(&self.path);
            let mut previous = fs::read(&self.path).map_err(|e| self.io(e))?;
            // A state changing form (`state encrypt|decrypt`) leaves no copy in the old form.
            let sealed = Envelope::find(&previous).ok().flatten().is_some();
            let form_changed = sealed != self.codec.key().is_some();
            if form_changed {
                let plain = self.codec.open(&previous, Purpose::State, &location).await?;
                previous = self.codec.seal(&plain, Purpose::State, &location).await?;
            }
            write_synced(&backup, &previous).map_err(|e| self.io(e))?;
            self.keep_history(&previous, form_changed).await?;
        }
        let operation = self.held.lock().expect("not poisoned").as_ref().map(|l| l.info.operation.clone());
        let written = self.history.stamp(operation.as_deref()).await;
        let stored = self.codec.seal(state.to_json_written(&written).as_bytes(), Purpose::State, &location).await?;
        crate::atomic_file::write(&self.path, &stored, 0o600).map_err(|e| self.io(e))?;
        // Everything journaled (by this command, or by one that died) is in the file now.
        self.journal.lock().expect("not poisoned").take();
        match fs::remove_file(self.journal_path()) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(self.io(e)),
        }
    }
}

#[async_trait]
impl StateBackend for LocalState<'_> {
    fn location(&self) -> String {
        self.path.display().to_string()
    }

    async fn load(&self) -> Result<State, StateError> {
        LocalState::load(self).await
    }

    async fn kept(&self) -> Result<Vec<u64>, StateError> {
        LocalState::kept(self)
    }

    async fn remove(&self) -> Result<(), StateError> {
        let gone = |r: std::io::Result<()>| match r {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(self.io(e)),
            _ => Ok(()),
        };
        gone(fs::remove_dir_all(self.history_dir()))?;
        gone(fs::remove_file(backup_path(&self.path)))?;
        gone(fs::remove_file(self.journal_path()))?;
        // The state last: a remove killed midway leaves a state the next one finds.
        gone(fs::remove_file(&self.path))
    }

    async fn load_kept(&self, serial: u64) -> Result<Option<State>, StateError> {
        LocalState::load_kept(self, serial).await
    }

    async fn lock(&self, operation: &str) -> Result<Acquired, StateError> {
        LocalState::lock(self, operation)
    }

    async fn keep(&self, _lock: &LockInfo) -> StateError {
        // A lock file lasts until released: only `force-unlock` takes it away. Checked every
        // few seconds, so a command whose lock was handed on stops before its next write.
        loop {
            tokio::time::sleep(std::time::Duration::from_secs(5)).await;
            let held = self.held.lock().expect("not poisoned").as_ref().map(StateLock::still_held);
            if let Some(Err(reason)) = held {
                return StateError::LockLost { path: self.location(), reason };
            }
        }
    }

    async fn unlock(&self, _lock: &LockInfo) -> Result<(), StateError> {
        LocalState::unlock(self);
        Ok(())
    }

    async fn force_unlock(&self, id: &str) -> Result<LockInfo, StateError> {
        StateLock::force_unlock(&self.path, id).map_err(|reason| StateError::Unlock { path: self.location(), reason })
    }

    async fn save(&self, state: &State) -> Result<(), StateError> {
        LocalState::save(self, state).await
    }

    async fn record(
        &self,
        state: &State,
        addr: &ResourceAddr,
        entry: Option<&ResourceState>,
    ) -> Result<(), StateError> {
        LocalState::record(self, state, addr, entry).await
    }
}

pub fn backup_path(path: &Path) -> PathBuf {
    super::beside(path, ".backup")
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

    fn bucket(n: usize) -> (ResourceAddr, ResourceState) {
        let id = format!("bucket-{n:04}");
        let mut attributes = crate::value::Attrs::new();
        attributes.insert("name".into(), serde_json::json!(id));
        (ResourceAddr::new("s3_bucket", format!("b{n}")), ResourceState { id, attributes, ..Default::default() })
    }

    #[tokio::test]
    async fn each_change_costs_a_write_its_own_size_and_one_save_folds_them_in() {
        // 300 resources recorded one by one: the state file is not rewritten per change, the
        // journal grows by the same few bytes whatever the state's size, and the final save
        // holds them all and removes the journal.
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("s.json");
        let store = LocalState::new(&path);
        store.lock("test").expect("lock");
        let mut state = store.load().await.expect("empty");
        store.save(&state).await.expect("first save");
        let file_before = fs::read(&path).expect("file");
        let mut growth = Vec::new();
        for n in 0..300 {
            let (addr, res) = bucket(n);
            state.resources.insert(addr.clone(), res.clone());
            state.serial += 1;
            let before = fs::metadata(store.journal_path()).map(|m| m.len()).unwrap_or(0);
            store.record(&state, &addr, Some(&res)).await.expect("record");
            growth.push(fs::metadata(store.journal_path()).expect("journal").len() - before);
        }
        assert_eq!(fs::read(&path).expect("file"), file_before, "the state file is untouched while recording");
        let (first, last) = (growth[10], growth[290]);
        assert!(last <= first + 4, "the 291st change wrote {last} bytes, the 11th {first}: proportional to the change");
        store.save(&state).await.expect("save");
        assert!(!store.journal_path().exists(), "folded in");
        assert_eq!(LocalState::new(&path).load().await.expect("load"), state);
    }

    #[tokio::test]
    async fn after_a_crash_load_replays_the_journal_and_ignores_a_torn_last_line() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("s.json");
        let store = LocalState::new(&path);
        store.lock("test").expect("lock");
        let mut state = store.load().await.expect("empty");
        let (a, ra) = bucket(1);
        state.resources.insert(a.clone(), ra.clone());
        state.serial = 1;
        store.save(&state).await.expect("save");
        // Then: b created, a deleted, and the process dies while c's line is half written.
        let (b, rb) = bucket(2);
        state.resources.insert(b.clone(), rb.clone());
        state.serial = 2;
        store.record(&state, &b, Some(&rb)).await.expect("record b");
        state.resources.remove(&a);
        state.serial = 3;
        store.record(&state, &a, None).await.expect("record a gone");
        drop(store);
        let mut journal = OpenOptions::new().append(true).open(dir.path().join("s.json.journal")).expect("journal");
        journal.write_all(br#"{"serial":4,"addr":"s3_bucket.c","reso"#).expect("torn line");

        let loaded = LocalState::new(&path).load().await.expect("replayed");
        assert_eq!(loaded.serial, 3);
        assert_eq!(loaded.resources.keys().collect::<Vec<_>>(), vec![&b]);
        assert_eq!(loaded, state);
    }

    #[tokio::test]
    async fn a_journal_line_of_another_state_is_refused_naming_the_journal() {
        // Lines of another lineage are never replayed into this state.
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("s.json");
        let store = LocalState::new(&path);
        store.lock("test").expect("lock");
        let mut state = store.load().await.expect("empty");
        store.save(&state).await.expect("save");
        let mut other = State::new();
        let (a, ra) = bucket(1);
        other.serial = 1;
        store.record(&other, &a, Some(&ra)).await.expect("record");
        let err = LocalState::new(&path).load().await.expect_err("refused");
        let msg = err.to_string();
        assert!(msg.contains(".journal") && msg.contains("another state"), "{msg}");
        // The state's own lines replay.
        fs::remove_file(store.journal_path()).expect("rm");
        drop(store);
        let store = LocalState::new(&path);
        state.serial = 1;
        store.record(&state, &a, Some(&ra)).await.expect("record");
        assert_eq!(LocalState::new(&path).load().await.expect("replays").resources.len(), 1);
    }

    #[tokio::test]
    async fn a_first_apply_that_died_keeps_its_lineage() {
        // No state file yet, only a journal: the replayed state has the journal's lineage.
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("s.json");
        let store = LocalState::new(&path);
        store.lock("test").expect("lock");
        let mut state = store.load().await.expect("empty");
        let (a, ra) = bucket(1);
        state.serial = 1;
        store.record(&state, &a, Some(&ra)).await.expect("record");
        let loaded = LocalState::new(&path).load().await.expect("replayed");
        assert_eq!(loaded.lineage, state.lineage);
        assert_eq!(loaded.resources.len(), 1);
    }

    #[tokio::test]
    async fn save_keeps_the_previous_state_as_backup() {
        // The first save of a command copies the old file aside; the new one replaces it whole.
        let dir = tempfile::tempdir().expect("tempdir");
        let store = LocalState::new(dir.path().join("s.json"));
        store.lock("test").expect("lock");
        let mut s = store.load().await.expect("empty");
        s.serial = 1;
        store.save(&s).await.expect("save 1");
        drop(store);
        let store = LocalState::new(dir.path().join("s.json"));
        store.lock("test").expect("lock");
        s.serial = 2;
        store.save(&s).await.expect("save 2");
        assert_eq!(store.load().await.expect("reads").serial, 2);
        let backup = State::from_json(&fs::read_to_string(backup_path(store.path())).expect("backup")).expect("parses");
        assert_eq!(backup.serial, 1);
    }

    #[cfg(unix)]
    #[tokio::test]
    async fn state_file_is_private_to_its_owner() {
        // State can hold secrets, so it is created with mode 0600.
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().expect("tempdir");
        let store = LocalState::new(dir.path().join("s.json"));
        store.lock("test").expect("lock");
        store.save(&State::new()).await.expect("save");
        let mode = fs::metadata(store.path()).expect("exists").permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    #[tokio::test]
    async fn corrupt_state_is_an_error_not_an_empty_state() {
        // A truncated file must never be mistaken for "nothing is managed".
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("s.json");
        fs::write(&path, "{\"version\": 1, \"ser").expect("write");
        assert!(matches!(LocalState::new(&path).load().await, Err(StateError::Corrupt { .. })));
    }
}
