//! A private `XDG_RUNTIME_DIR` for the command line when the environment has none.
//!
//! Why: creating the wgpu instance loads Mesa's Vulkan device-select layer
//! (`VkLayer_MESA_device_select`, an implicit layer of `mesa-vulkan-drivers`). When wgpu lists the
//! adapters, that layer asks the Wayland compositor which GPU drives the display by calling
//! `wl_display_connect`, and libwayland prints "error: XDG_RUNTIME_DIR is invalid or not set in the
//! environment." (twice) on stderr whenever the variable is unset, empty or not an absolute path:
//! on every headless machine, in front of the user's own error. With no valid runtime directory no
//! Wayland connection can succeed anyway, so giving the process an empty private one changes
//! nothing but the noise: the connection attempt then fails quietly (no socket in it). A variable
//! that is already an absolute path is left as it is (libwayland is quiet then, even when the
//! directory is missing).

use std::path::{Path, PathBuf};

/// Whether libwayland would refuse `value` as a runtime directory (its own test: set and absolute).
pub fn is_invalid(value: Option<&std::ffi::OsStr>) -> bool {
    value.is_none_or(|v| !Path::new(v).is_absolute())
}

/// Set `XDG_RUNTIME_DIR` to a private directory (`$TMPDIR/spatial-mllm-runtime-UID`, mode 0700,
/// created if missing) when it is unset or invalid. Call at the start of `main`, before any
/// thread exists (the environment is process-wide). Returns the directory set, if any; when no
/// such directory can be made safely (another user owns it, a file is in its place) nothing is set
/// and the noise stays, which is harmless.
pub fn give_private_runtime_dir() -> Option<PathBuf> {
    if !is_invalid(std::env::var_os("XDG_RUNTIME_DIR").as_deref()) {
        return None;
    }
    let dir = private_dir()?;
    std::env::set_var("XDG_RUNTIME_DIR", &dir);
    Some(dir)
}

#[cfg(unix)]
fn private_dir() -> Option<PathBuf> {
    use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
    // SAFETY: getuid has no preconditions and cannot fail.
    let uid = unsafe { libc::getuid() };
    let dir = std::env::temp_dir().join(format!("spatial-mllm-runtime-{uid}"));
    let _ = std::fs::DirBuilder::new().mode(0o700).create(&dir);
    // The XDG rules for a runtime directory: a directory of this user that only they can enter.
    let meta = std::fs::symlink_metadata(&dir).ok()?;
    (meta.is_dir() && meta.uid() == uid && meta.permissions().mode() & 0o077 == 0).then_some(dir)
}

#[cfg(not(unix))]
fn private_dir() -> Option<PathBuf> {
    None // no Wayland: nothing to quieten
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invalid_is_what_libwayland_refuses() {
        assert!(is_invalid(None));
        assert!(is_invalid(Some("".as_ref())));
        assert!(is_invalid(Some("run/user/1000".as_ref())));
        assert!(!is_invalid(Some("/run/user/1000".as_ref())));
        assert!(!is_invalid(Some("/no/such/dir".as_ref())), "absolute but missing: libwayland stays quiet");
    }

    #[cfg(unix)]
    #[test]
    fn the_private_dir_is_the_users_alone() {
        use std::os::unix::fs::PermissionsExt;
        let dir = private_dir().expect("a private runtime dir under the temp dir");
        let meta = std::fs::metadata(&dir).unwrap();
        assert!(meta.is_dir() && meta.permissions().mode() & 0o077 == 0, "{}", dir.display());
        assert_eq!(private_dir(), Some(dir), "the same directory every time");
    }
}
