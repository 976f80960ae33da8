//! Kafka's `allowed.paths` (KIP-993): the directories whose files connector configs may name.
//!
//! Anyone who can reach the REST API can create a connector, so a FileStream connector or a
//! `${file:...}`/`${directory:...}` placeholder that names any path would let them read and
//! write every file the worker can (`/etc/passwd` into a topic, topic data into `~/.ssh`). The
//! worker therefore only opens files inside the directories of `--allowed-paths`, and none at
//! all when that is empty (the default, as Kafka took its file connectors off the default plugin
//! path for the same reason).
//!
//! A path is checked as the kernel would open it: made absolute, then with `..` and every
//! symbolic link resolved (`canonicalize`), so neither `allowed/../etc/passwd` nor a link inside
//! an allowed directory that points out of it gets through. A file that does not exist yet (a
//! sink's output) is checked through its directory, which must exist. The check runs when a
//! config is validated and again each time a task opens the file, which then opens the resolved
//! path without following a symbolic link in its last component, so a link swapped in after the
//! check is refused rather than followed.

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// How to allow a directory, for error messages.
pub const HOW_TO_ALLOW: &str =
    "start the worker with --allowed-paths DIR[,DIR...] (env CONNECT_ALLOWED_PATHS) to let connectors use files inside those directories";

/// The canonical directories connectors may use; empty means no file access at all.
#[derive(Clone, Default)]
pub struct AllowedPaths {
    dirs: Arc<[PathBuf]>,
}

impl fmt::Debug for AllowedPaths {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.dirs.iter()).finish()
    }
}

/// Why `--allowed-paths` cannot be used (the worker does not start).
#[derive(Debug, thiserror::Error)]
pub enum AllowedPathsError {
    #[error("allowed path {} is not absolute", .0.display())]
    NotAbsolute(PathBuf),
    #[error("allowed path {}: {source}", .path.display())]
    Unusable {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("allowed path {} is not a directory", .0.display())]
    NotADirectory(PathBuf),
}

/// Why a path may not be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PathError {
    #[error("file access is disabled on this worker (no allowed paths); {HOW_TO_ALLOW}")]
    NoAllowedPaths,
    #[error("{} is outside the worker's allowed paths ({allowed}); {HOW_TO_ALLOW}", .path.display())]
    NotAllowed {
        /// The path as resolved (absolute, `..` and symbolic links followed).
        path: PathBuf,
        allowed: String,
    },
    #[error("{} cannot be resolved: {reason}", .path.display())]
    Unresolvable { path: PathBuf, reason: String },
}

impl AllowedPaths {
    /// Canonicalizes `dirs`, each of which must be an absolute path to an existing directory.
    pub fn new(dirs: &[PathBuf]) -> Result<Self, AllowedPathsError> {
        let mut out = Vec::with_capacity(dirs.len());
        for dir in dirs {
            if !dir.is_absolute() {
                return Err(AllowedPathsError::NotAbsolute(dir.clone()));
            }
            let canonical =
                std::fs::canonicalize(dir).map_err(|source| AllowedPathsError::Unusable {
                    path: dir.clone(),
                    source,
                })?;
            if !canonical.is_dir() {
                return Err(AllowedPathsError::NotADirectory(dir.clone()));
            }
            if !out.contains(&canonical) {
                out.push(canonical);
            }
        }
        Ok(AllowedPaths { dirs: out.into() })
    }

    pub fn is_empty(&self) -> bool {
        self.dirs.is_empty()
    }

    /// The canonical form of `path` if it lies inside an allowed directory. `path` need not
    /// exist, but its directory must.
    pub fn resolve(&self, path: impl AsRef<Path>) -> Result<PathBuf, PathError> {
        let path = path.as_ref();
        if self.dirs.is_empty() {
            return Err(PathError::NoAllowedPaths);
        }
        let unresolvable = |reason: String| PathError::Unresolvable {
            path: path.to_path_buf(),
            reason,
        };
        if path.as_os_str().is_empty() {
            return Err(unresolvable("the path is empty".into()));
        }
        let resolved = match std::fs::symlink_metadata(path) {
            // It exists (possibly as a link): follow everything; a dangling link is refused
            // rather than letting a later create follow it out of the directory.
            Ok(_) => std::fs::canonicalize(path).map_err(|e| unresolvable(e.to_string()))?,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                let name = path
                    .file_name()
                    .ok_or_else(|| unresolvable("it does not name a file".into()))?;
                let parent = match path.parent() {
                    Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
                    _ => PathBuf::from("."),
                };
                let dir = std::fs::canonicalize(&parent).map_err(|e| {
                    unresolvable(format!("its directory {}: {e}", parent.display()))
                })?;
                dir.join(name)
            }
            Err(e) => return Err(unresolvable(e.to_string())),
        };
        if self.dirs.iter().any(|d| resolved.starts_with(d)) {
            Ok(resolved)
        } else {
            Err(PathError::NotAllowed {
                path: resolved,
                allowed: self
                    .dirs
                    .iter()
                    .map(|d| d.display().to_string())
                    .collect::<Vec<_>>()
                    .join(", "),
            })
        }
    }

    /// Opens an allowed path: checks it, then opens the resolved path without following a
    /// symbolic link in its last component (one swapped in since the check fails to open).
    pub async fn open(
        &self,
        path: impl AsRef<Path>,
        options: &mut tokio::fs::OpenOptions,
    ) -> io::Result<tokio::fs::File> {
        let resolved = self
            .resolve(path)
            .map_err(|e| io::Error::new(io::ErrorKind::PermissionDenied, e))?;
        #[cfg(unix)]
        options.custom_flags(libc::O_NOFOLLOW);
        options.open(resolved).await
    }

    /// Reads an allowed file to a string (the `file` and `directory` config providers).
    pub fn read_to_string(&self, path: impl AsRef<Path>) -> Result<String, PathError> {
        let resolved = self.resolve(path.as_ref())?;
        let mut options = std::fs::OpenOptions::new();
        options.read(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::custom_flags(&mut options, libc::O_NOFOLLOW);
        let read = options.open(&resolved).and_then(|mut f| {
            let mut text = String::new();
            io::Read::read_to_string(&mut f, &mut text).map(|_| text)
        });
        read.map_err(|e| PathError::Unresolvable {
            path: resolved,
            reason: e.to_string(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn allowed(dir: &Path) -> AllowedPaths {
        AllowedPaths::new(&[dir.to_path_buf()]).unwrap()
    }

    #[test]
    fn none_allowed_refuses_everything_and_says_how() {
        let err = AllowedPaths::default().resolve("/tmp").unwrap_err();
        assert_eq!(err, PathError::NoAllowedPaths);
        assert!(err.to_string().contains("--allowed-paths"), "{err}");
        assert!(err.to_string().contains("CONNECT_ALLOWED_PATHS"), "{err}");
    }

    #[test]
    fn allowed_dirs_must_be_absolute_existing_directories() {
        assert!(matches!(
            AllowedPaths::new(&["relative/dir".into()]),
            Err(AllowedPathsError::NotAbsolute(_))
        ));
        assert!(matches!(
            AllowedPaths::new(&["/nonexistent/datasync/dir".into()]),
            Err(AllowedPathsError::Unusable { .. })
        ));
        let f = tempfile::NamedTempFile::new().unwrap();
        assert!(matches!(
            AllowedPaths::new(&[f.path().to_path_buf()]),
            Err(AllowedPathsError::NotADirectory(_))
        ));
    }

    #[test]
    fn paths_inside_are_allowed_whether_or_not_they_exist() {
        let dir = tempfile::tempdir().unwrap();
        let root = std::fs::canonicalize(dir.path()).unwrap();
        std::fs::create_dir(root.join("sub")).unwrap();
        std::fs::write(root.join("sub/in.txt"), "x").unwrap();
        let a = allowed(dir.path());
        assert_eq!(
            a.resolve(dir.path().join("sub/in.txt")).unwrap(),
            root.join("sub/in.txt")
        );
        assert_eq!(
            a.resolve(dir.path().join("sub/./new.txt")).unwrap(),
            root.join("sub/new.txt")
        );
        // `..` that stays inside is fine.
        assert_eq!(
            a.resolve(dir.path().join("sub/../out.txt")).unwrap(),
            root.join("out.txt")
        );
    }

    #[test]
    fn escapes_are_refused() {
        let parent = tempfile::tempdir().unwrap();
        let inside = parent.path().join("allowed");
        std::fs::create_dir(&inside).unwrap();
        std::fs::write(parent.path().join("secret"), "s3cret").unwrap();
        let a = allowed(&inside);

        for path in [
            PathBuf::from("/etc/passwd"),
            inside.join("../secret"),
            inside.join("../new-file"),
            inside.join(".."),
            // A sibling whose name starts with the allowed one is not inside it.
            parent.path().join("allowed-not"),
        ] {
            let err = a.resolve(&path).unwrap_err();
            assert!(
                matches!(
                    err,
                    PathError::NotAllowed { .. } | PathError::Unresolvable { .. }
                ),
                "{}: {err}",
                path.display()
            );
        }

        // A link inside pointing out, to an existing file and to one not there yet.
        std::os::unix::fs::symlink(parent.path().join("secret"), inside.join("link")).unwrap();
        std::os::unix::fs::symlink(parent.path().join("nothing-yet"), inside.join("dangling"))
            .unwrap();
        std::os::unix::fs::symlink(parent.path(), inside.join("dirlink")).unwrap();
        for name in ["link", "dangling", "dirlink/secret", "dirlink/new"] {
            assert!(a.resolve(inside.join(name)).is_err(), "{name}");
        }
        assert!(a.read_to_string(inside.join("link")).is_err());
        let err = a
            .read_to_string(parent.path().join("allowed/../secret"))
            .unwrap_err();
        assert!(
            err.to_string()
                .contains("outside the worker's allowed paths"),
            "{err}"
        );
    }

    #[tokio::test]
    async fn open_checks_the_path_before_opening_it() {
        let parent = tempfile::tempdir().unwrap();
        let inside = parent.path().join("allowed");
        std::fs::create_dir(&inside).unwrap();
        std::fs::write(parent.path().join("secret"), "s3cret").unwrap();
        let a = allowed(&inside);
        let mut options = tokio::fs::OpenOptions::new();
        options.read(true);
        std::fs::write(inside.join("f"), "ok").unwrap();
        assert!(a.open(inside.join("f"), &mut options).await.is_ok());
        std::os::unix::fs::symlink(parent.path().join("secret"), inside.join("l")).unwrap();
        let err = a.open(inside.join("l"), &mut options).await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::PermissionDenied);
    }
}
