//! The one way the engine replaces a file a person may be reading or editing (the state, a
//! saved plan, a spec `drift --adopt` patches): a temporary file with a unique name in the same
//! folder (`tempfile`), written and synced, given the mode of the file it replaces (or
//! `new_mode` for a new one), renamed over it, and the folder synced so the rename survives a
//! power cut. A symlink is written through: its target is replaced and the link stays a link.
//! A reader sees the old file or the new one, never a part.

use std::io::Write;
use std::path::{Path, PathBuf};

/// Replaces the file at `path` with `bytes` as described above.
pub fn write(path: &Path, bytes: &[u8], new_mode: u32) -> std::io::Result<()> {
    let target = through_links(path)?;
    let dir = match target.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let name = target.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let mut tmp = tempfile::Builder::new().prefix(&format!(".{name}.")).suffix(".tmp").tempfile_in(&dir)?;
    tmp.write_all(bytes)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&target).map(|m| m.permissions().mode() & 0o7777).unwrap_or(new_mode);
        tmp.as_file().set_permissions(std::fs::Permissions::from_mode(mode))?;
    }
    tmp.as_file().sync_all()?;
    tmp.persist(&target).map_err(|e| e.error)?;
    std::fs::File::open(&dir)?.sync_all()
}

/// Where writing `path` lands: the file a symlink (or a chain of them) points at.
fn through_links(path: &Path) -> std::io::Result<PathBuf> {
    let mut at = path.to_path_buf();
    for _ in 0..40 {
        match std::fs::symlink_metadata(&at) {
            Ok(meta) if meta.file_type().is_symlink() => {
                let link = std::fs::read_link(&at)?;
                at = match at.parent() {
                    Some(parent) if link.is_relative() => parent.join(link),
                    _ => link,
                };
            }
            _ => return Ok(at),
        }
    }
    Err(std::io::Error::other(format!("{}: too many levels of symbolic links", path.display())))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn mode(path: &Path) -> u32 {
        std::fs::metadata(path).expect("metadata").permissions().mode() & 0o777
    }

    #[test]
    fn a_new_file_gets_the_mode_asked_and_a_replaced_one_keeps_its_own() {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("state.json");
        write(&path, b"one", 0o600).expect("written");
        assert_eq!((std::fs::read_to_string(&path).expect("read"), mode(&path)), ("one".into(), 0o600));
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o640)).expect("chmod");
        write(&path, b"two", 0o600).expect("written again");
        assert_eq!((std::fs::read_to_string(&path).expect("read"), mode(&path)), ("two".into(), 0o640));
        let left: Vec<_> = std::fs::read_dir(dir.path()).expect("list").filter_map(|e| e.ok()).collect();
        assert_eq!(left.len(), 1, "no temporary file is left behind");
    }

    #[test]
    fn a_symlinked_file_is_written_through_and_the_link_stays() {
        let dir = tempfile::tempdir().expect("dir");
        std::fs::create_dir(dir.path().join("real")).expect("dir");
        let target = dir.path().join("real/cruddur.yaml");
        std::fs::write(&target, "old").expect("target");
        let link = dir.path().join("cruddur.yaml");
        std::os::unix::fs::symlink("real/cruddur.yaml", &link).expect("link");
        write(&link, b"new", 0o644).expect("written");
        assert!(std::fs::symlink_metadata(&link).expect("meta").file_type().is_symlink());
        assert_eq!(std::fs::read_to_string(&target).expect("read"), "new");
    }

    #[test]
    fn writers_never_share_a_temporary_file() {
        // Eight writers at once (the same process: a pid-named temp file would collide).
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("plan");
        std::thread::scope(|s| {
            for i in 0..8 {
                let path = path.clone();
                s.spawn(move || write(&path, format!("writer {i}").repeat(1000).as_bytes(), 0o600).expect("written"));
            }
        });
        let text = std::fs::read_to_string(&path).expect("read");
        assert!((0..8).any(|i| text == format!("writer {i}").repeat(1000)), "one writer's whole text");
    }
}
