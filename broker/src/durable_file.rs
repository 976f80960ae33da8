//! Crash-safe replacement of small state files (topic metadata, producer id blocks): a crash
//! leaves either the old or the new content, never a mix.

use std::path::Path;

/// Replaces `dir/name` with `bytes` so that a crash leaves either the old or the new content.
pub fn write_atomically(dir: &Path, name: &str, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let tmp = dir.join(format!("{name}.tmp"));
    let mut file = std::fs::File::create(&tmp)?;
    file.write_all(bytes)?;
    file.sync_all()?;
    std::fs::rename(&tmp, dir.join(name))?;
    std::fs::File::open(dir)?.sync_all()?;
    Ok(())
}
