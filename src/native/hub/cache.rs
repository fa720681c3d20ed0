//! huggingface_hub's cache layout, so that files downloaded with Python are reused and ours are
//! seen by Python: `models--{org}--{name}/blobs/{etag}` (sha256 for LFS files, the git blob sha1
//! otherwise), `snapshots/{commit}/{path}` (a relative symlink to the blob, or a copy where
//! symlinks fail) and `refs/{revision}` holding the commit. Downloads in progress are
//! `blobs/{etag}.incomplete`.

use std::path::{Path, PathBuf};

use super::error::{io_err, HResult};

pub struct RepoCache {
    pub root: PathBuf,
}

impl RepoCache {
    pub fn new(hub_cache: &Path, id: &str) -> RepoCache {
        RepoCache { root: hub_cache.join(format!("models--{}", id.replace('/', "--"))) }
    }
    pub fn blob(&self, etag: &str) -> PathBuf {
        self.root.join("blobs").join(etag)
    }
    pub fn incomplete(&self, etag: &str) -> PathBuf {
        self.root.join("blobs").join(format!("{etag}.incomplete"))
    }
    pub fn snapshot(&self, commit: &str) -> PathBuf {
        self.root.join("snapshots").join(commit)
    }
    pub fn pointer(&self, commit: &str, file: &str) -> PathBuf {
        self.snapshot(commit).join(file)
    }

    /// The commit a revision pointed at when last resolved.
    pub fn read_ref(&self, revision: &str) -> Option<String> {
        if !safe_relative(revision) {
            return None;
        }
        let text = std::fs::read_to_string(self.root.join("refs").join(revision)).ok()?;
        let c = text.trim();
        (c.len() == 40 && c.chars().all(|c| c.is_ascii_hexdigit())).then(|| c.to_string())
    }

    pub fn write_ref(&self, revision: &str, commit: &str) -> HResult<()> {
        // A revision that is no plain relative name (the user's `..`) keeps no ref: it is a hint only.
        if revision == commit || !safe_relative(revision) {
            return Ok(());
        }
        let path = self.root.join("refs").join(revision);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(io_err(parent))?;
        }
        std::fs::write(&path, commit).map_err(io_err(&path))
    }

    /// `snapshots/{commit}/{file}` → `blobs/{etag}`: a relative symlink, or a copy where the file
    /// system has none.
    pub fn link(&self, commit: &str, file: &str, etag: &str) -> HResult<PathBuf> {
        let pointer = self.pointer(commit, file);
        let parent = pointer.parent().expect("a file in the snapshot");
        std::fs::create_dir_all(parent).map_err(io_err(parent))?;
        let _ = std::fs::remove_file(&pointer);
        let blob = self.blob(etag);
        #[cfg(unix)]
        {
            let depth = file.split('/').count();
            let target = format!("{}blobs/{etag}", "../".repeat(depth + 1));
            if std::os::unix::fs::symlink(&target, &pointer).is_ok() {
                return Ok(pointer);
            }
        }
        std::fs::copy(&blob, &pointer).map_err(io_err(&pointer))?;
        Ok(pointer)
    }
}

/// Whether a name the hub sent is safe to join under the cache: a relative path of plain
/// components (no `..`, `.`, empty part, backslash, drive or NUL), so that a hostile hub cannot
/// make the CLI write outside `snapshots/{commit}/`.
pub fn safe_relative(path: &str) -> bool {
    !path.is_empty() && !path.contains(['\\', '\0', ':']) && path.split('/').all(|c| !c.is_empty() && c != "." && c != "..")
}

/// Whether a commit or blob name the hub sent is a hex digest (40: git sha1, 64: SHA-256).
pub fn hex_digest(s: &str) -> bool {
    matches!(s.len(), 40 | 64) && s.chars().all(|c| c.is_ascii_hexdigit())
}

/// A file into a package directory: a hard link where possible (same disk), else a copy.
pub fn link_or_copy(src: &Path, dst: &Path) -> HResult<()> {
    let src = std::fs::canonicalize(src).map_err(io_err(src))?;
    if let Some(parent) = dst.parent() {
        std::fs::create_dir_all(parent).map_err(io_err(parent))?;
    }
    let _ = std::fs::remove_file(dst);
    if std::fs::hard_link(&src, dst).is_ok() {
        return Ok(());
    }
    std::fs::copy(&src, dst).map(|_| ()).map_err(io_err(dst))
}

/// Bytes free for an unprivileged user on the disk of `dir` (or of its nearest existing parent).
#[cfg(unix)]
pub fn free_space(dir: &Path) -> Option<u64> {
    use std::os::unix::ffi::OsStrExt;
    let mut p = dir;
    while !p.exists() {
        p = p.parent()?;
    }
    let c = std::ffi::CString::new(p.as_os_str().as_bytes()).ok()?;
    // SAFETY: a NUL-terminated path and a zeroed plain-data struct for statvfs to fill.
    let mut s: libc::statvfs = unsafe { std::mem::zeroed() };
    if unsafe { libc::statvfs(c.as_ptr(), &mut s) } != 0 {
        return None;
    }
    Some((s.f_bavail as u64).saturating_mul(s.f_frsize as u64))
}

#[cfg(not(unix))]
pub fn free_space(_dir: &Path) -> Option<u64> {
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_from_the_hub_stay_inside_the_cache() {
        for ok in ["model.safetensors", "vision/config.json", "a.b/c_d-e.json"] {
            assert!(safe_relative(ok), "{ok}");
        }
        for bad in ["", "../x", "a/../../x", "/etc/passwd", "a//b", "./a", "a/.", "..\\x", "C:x", "a\0b"] {
            assert!(!safe_relative(bad), "{bad:?}");
        }
        assert!(hex_digest(&"a".repeat(40)) && hex_digest(&"0F".repeat(32)));
        assert!(!hex_digest("../../x") && !hex_digest(&"g".repeat(40)) && !hex_digest("abc"));
    }
}
