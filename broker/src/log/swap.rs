//! The crash-safe swap of a cleaned segment's files for the live ones, and the recovery that
//! completes or discards a swap a crash interrupted.
//!
//! It lives apart from the cleaner because [`PartitionLog::open`](super::PartitionLog::open)
//! must finish an interrupted swap before it lists the segments, while the cleaner itself works
//! on an open log: with the swap here, the log does not depend on the cleaner, only the cleaner
//! on the log.
//!
//! Protocol: the cleaner writes `<base>.log.cleaned` (+ `.index.cleaned`, `.timeindex.cleaned`)
//! and fsyncs them; [`swap_in`] renames them to `.swap` (the log file last: that rename is the
//! commit point), fsyncs the directory, renames the `.swap` files to the live names (indexes
//! first) and fsyncs again. On open, every `.cleaned` file is deleted (not committed), and for
//! each `<base>.log.swap` the swap is completed; index `.swap` files without a log `.swap` are
//! deleted.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use super::error::LogError;
use super::segment::{
    parse_base_offset, segment_file_name, sync_dir, INDEX_EXT, LOG_EXT, TIME_INDEX_EXT,
};

/// Suffix of a cleaned segment's files while they are written.
pub const CLEANED_SUFFIX: &str = ".cleaned";
/// Suffix of a cleaned segment's files once the swap is committed.
pub const SWAP_SUFFIX: &str = ".swap";

pub(super) fn suffixed(dir: &Path, base_offset: i64, ext: &str, suffix: &str) -> PathBuf {
    dir.join(format!("{}{suffix}", segment_file_name(base_offset, ext)))
}

fn remove_if_exists(path: &Path) -> io::Result<()> {
    match fs::remove_file(path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

/// Removes the `.cleaned` files of a segment.
pub(super) fn remove_cleaned_files(dir: &Path, base_offset: i64) {
    for ext in [LOG_EXT, INDEX_EXT, TIME_INDEX_EXT] {
        let path = suffixed(dir, base_offset, ext, CLEANED_SUFFIX);
        if let Err(e) = remove_if_exists(&path) {
            tracing::warn!(path = %path.display(), error = %e, "could not remove cleaned file");
        }
    }
}

/// Completes or discards the work of a cleaner interrupted by a crash (see the module docs):
/// run when a log is opened, before its segments are listed.
pub fn recover_interrupted_cleaning(dir: &Path) -> Result<(), LogError> {
    let mut log_swaps = Vec::new();
    let mut index_swaps = Vec::new();
    let mut changed = false;
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if let Some(stem) = name.strip_suffix(CLEANED_SUFFIX) {
            if [LOG_EXT, INDEX_EXT, TIME_INDEX_EXT]
                .iter()
                .any(|ext| parse_base_offset(stem, ext).is_some())
            {
                tracing::info!(path = %entry.path().display(), "removing unfinished cleaned segment file");
                remove_if_exists(&entry.path())?;
                changed = true;
            }
        } else if let Some(stem) = name.strip_suffix(SWAP_SUFFIX) {
            if let Some(base) = parse_base_offset(stem, LOG_EXT) {
                log_swaps.push(base);
            } else if let Some(base) = parse_base_offset(stem, INDEX_EXT)
                .or_else(|| parse_base_offset(stem, TIME_INDEX_EXT))
            {
                index_swaps.push((base, entry.path()));
            }
        }
    }
    for (base, path) in index_swaps {
        if !log_swaps.contains(&base) {
            tracing::info!(path = %path.display(), "removing uncommitted swap file");
            remove_if_exists(&path)?;
            changed = true;
        }
    }
    for base in log_swaps {
        tracing::info!(dir = %dir.display(), base_offset = base, "completing an interrupted segment swap");
        finish_swap(dir, base)?;
        changed = true;
    }
    if changed {
        sync_dir(dir)?;
    }
    Ok(())
}

/// Second half of a swap: `.swap` files to their live names, indexes first. Index `.swap`
/// files already renamed are skipped.
fn finish_swap(dir: &Path, base_offset: i64) -> Result<(), LogError> {
    for ext in [INDEX_EXT, TIME_INDEX_EXT, LOG_EXT] {
        let from = suffixed(dir, base_offset, ext, SWAP_SUFFIX);
        match fs::rename(&from, suffixed(dir, base_offset, ext, "")) {
            Err(e) if e.kind() == io::ErrorKind::NotFound && ext != LOG_EXT => {}
            other => other?,
        }
    }
    Ok(())
}

/// Replaces a segment's live files with its `.cleaned` files, crash-safely.
pub(super) fn swap_in(dir: &Path, base_offset: i64) -> Result<(), LogError> {
    for ext in [INDEX_EXT, TIME_INDEX_EXT, LOG_EXT] {
        fs::rename(
            suffixed(dir, base_offset, ext, CLEANED_SUFFIX),
            suffixed(dir, base_offset, ext, SWAP_SUFFIX),
        )?;
    }
    sync_dir(dir)?;
    finish_swap(dir, base_offset)?;
    sync_dir(dir)?;
    Ok(())
}
