//! One switch per store: an exclusive lock on a file beside the database.
//!
//! SQLite itself lets two processes write the same file, so a second
//! `tpswitch run` on one store would start, re-arm the same expiry timers
//! (two "you are offline" calls per window) and only fail later, on a port.
//! `run` takes this lock before anything else and keeps it until it exits;
//! the kernel drops it when the process dies, even by SIGKILL, so a crash
//! never leaves a stale lock. The holder's PID is written into the file so
//! the refusal can name it. Read-only readers (`tpswitch agents`, `calls`)
//! take no lock.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error("the database {db} is in use by another tpswitch ({holder}, per {lock}); stop that one first, or give this one its own [store] path")]
    Held {
        db: PathBuf,
        lock: PathBuf,
        holder: String,
    },
    #[error("cannot lock {lock} (beside the database {db}): {source}; check that this user may create and write files in that folder")]
    Io {
        db: PathBuf,
        lock: PathBuf,
        source: std::io::Error,
    },
}

/// Held while the switch runs; dropping it releases the lock. The file
/// stays: removing it would let a third process lock a fresh inode while a
/// second still waits on the old one.
#[derive(Debug)]
pub struct StoreLock {
    _file: File,
    path: PathBuf,
}

impl StoreLock {
    /// The lock file for the database at `db`: `<db>.lock`.
    pub fn path_for(db: &Path) -> PathBuf {
        let mut name = db.as_os_str().to_owned();
        name.push(".lock");
        PathBuf::from(name)
    }

    /// Locks `<db>.lock` without waiting, creating the folder and file if
    /// needed, and writes our PID into it.
    pub fn acquire(db: &Path) -> Result<StoreLock, LockError> {
        let lock = Self::path_for(db);
        let io = |source| LockError::Io {
            db: db.to_path_buf(),
            lock: lock.clone(),
            source,
        };
        if let Some(dir) = db.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(io)?;
        }
        // Not truncated on open: until we hold the lock, the PID in it is
        // the holder's, and the refusal below reads it.
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&lock)
            .map_err(io)?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                let mut text = String::new();
                // Best effort: the holder may be writing it right now.
                let _ = file.read_to_string(&mut text);
                let holder = match text.trim().parse::<u32>() {
                    Ok(pid) => format!("pid {pid}"),
                    Err(_) => "pid unknown".to_string(),
                };
                return Err(LockError::Held {
                    db: db.to_path_buf(),
                    lock,
                    holder,
                });
            }
            Err(TryLockError::Error(e)) => return Err(io(e)),
        }
        file.set_len(0)
            .and_then(|_| file.seek(SeekFrom::Start(0)))
            .and_then(|_| writeln!(file, "{}", std::process::id()))
            .and_then(|_| file.flush())
            .map_err(io)?;
        Ok(StoreLock {
            _file: file,
            path: lock,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_lock_is_refused_naming_the_holder_then_granted_after_release() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("sub/tpswitch.db");
        let first = StoreLock::acquire(&db).unwrap();
        assert_eq!(first.path(), dir.path().join("sub/tpswitch.db.lock"));
        let pid = std::process::id().to_string();
        assert_eq!(std::fs::read_to_string(first.path()).unwrap().trim(), pid);
        // flock is per open file description: a second open in the same
        // process conflicts just as another process would.
        let e = StoreLock::acquire(&db).unwrap_err().to_string();
        assert!(e.contains(&format!("pid {pid}")), "{e}");
        assert!(
            e.contains("tpswitch.db.lock") && e.contains("[store] path"),
            "{e}"
        );
        drop(first);
        let again = StoreLock::acquire(&db).unwrap();
        drop(again);
    }
}
