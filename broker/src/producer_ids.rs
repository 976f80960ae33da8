//! Producer ids for idempotent producers. Ids are handed out from blocks whose end is persisted
//! before any id of the block is used, so a restarted broker never hands out an id twice.

use std::path::{Path, PathBuf};

use parking_lot::Mutex;

use crate::durable_file::write_atomically;

const BLOCK: i64 = 1000;
const FILE: &str = "producer-id-block";

/// Allocates producer ids.
pub struct ProducerIds {
    dir: PathBuf,
    state: Mutex<(i64, i64)>,
}

impl ProducerIds {
    /// Starts after the last block reserved by a previous run.
    pub fn open(dir: &Path) -> std::io::Result<Self> {
        let reserved_end = match std::fs::read_to_string(dir.join(FILE)) {
            Ok(s) => s.trim().parse::<i64>().map_err(|e| {
                std::io::Error::new(std::io::ErrorKind::InvalidData, format!("{FILE}: {e}"))
            })?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => 0,
            Err(e) => return Err(e),
        };
        Ok(ProducerIds {
            dir: dir.to_path_buf(),
            state: Mutex::new((reserved_end, reserved_end)),
        })
    }

    /// A fresh producer id.
    pub fn next(&self) -> std::io::Result<i64> {
        let mut state = self.state.lock();
        let (next, end) = *state;
        if next >= end {
            let new_end = next + BLOCK;
            write_atomically(&self.dir, FILE, new_end.to_string().as_bytes())?;
            state.1 = new_end;
        }
        state.0 = next + 1;
        Ok(next)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_never_reused_across_restarts() {
        let dir = tempfile::tempdir().expect("tempdir");
        let ids = ProducerIds::open(dir.path()).expect("open");
        let a = ids.next().expect("id");
        let b = ids.next().expect("id");
        assert_eq!(b, a + 1);
        drop(ids);
        let again = ProducerIds::open(dir.path()).expect("reopen");
        assert!(again.next().expect("id") > b);
    }
}
