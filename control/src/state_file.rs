//! Small values a node keeps under `node.state_dir` across restarts (its VTEP MAC, its
//! WireGuard key): read when there, made once when not.
//!
//! A file is written to a temporary file in the same directory, whose mode is set on the open
//! file before anything is written (so the umask cannot change it and nobody else can read a
//! secret in the meantime), synced, and renamed into place without replacing a file another
//! start made meanwhile; the directory is then synced so the rename survives a crash. A file is
//! therefore either absent or whole.

use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

/// Why a kept file could not be read or made.
#[derive(Debug, thiserror::Error)]
#[error("node.state_dir: {what} {}: {source}", path.display())]
pub struct StateFileError {
    what: &'static str,
    path: PathBuf,
    #[source]
    source: std::io::Error,
}

/// A mapper from an I/O error to a [`StateFileError`] saying `what` failed on `path`.
pub(crate) fn error(what: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> StateFileError {
    let path = path.to_owned();
    move |source| StateFileError { what, path, source }
}

/// The file at `path` is there but cannot be used, because of `why`.
pub(crate) fn invalid(path: &Path, why: String) -> StateFileError {
    error("cannot use", path)(std::io::Error::new(std::io::ErrorKind::InvalidData, why))
}

/// The text of `state_dir/name` and its permission bits, `None` when there is no such file.
pub(crate) fn read(state_dir: &Path, name: &str) -> Result<Option<(String, u32)>, StateFileError> {
    let path = state_dir.join(name);
    let file = match std::fs::File::open(&path) {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(error("cannot read", &path)(e)),
    };
    let mode = file.metadata().map_err(error("cannot read", &path))?.permissions().mode();
    let text = std::io::read_to_string(file).map_err(error("cannot read", &path))?;
    Ok(Some((text, mode)))
}

/// Makes `state_dir/name` (and `state_dir`) holding `contents` with permission bits `mode`,
/// unless it exists. Returns `false` when another start made the file first: its value is the
/// node's, to be read back.
pub(crate) fn create(
    state_dir: &Path,
    name: &str,
    mode: u32,
    contents: &str,
) -> Result<bool, StateFileError> {
    std::fs::create_dir_all(state_dir).map_err(error("cannot create", state_dir))?;
    let path = state_dir.join(name);
    let mut tmp = tempfile::Builder::new()
        .prefix(&format!(".{name}."))
        .tempfile_in(state_dir)
        .map_err(error("cannot create a file in", state_dir))?;
    let written = tmp.as_file().set_permissions(std::fs::Permissions::from_mode(mode));
    written
        .and_then(|()| tmp.write_all(contents.as_bytes()))
        .and_then(|()| tmp.as_file().sync_all())
        .map_err(error("cannot write", tmp.path()))?;
    if let Err(e) = tmp.persist_noclobber(&path) {
        if e.error.kind() == std::io::ErrorKind::AlreadyExists {
            return Ok(false);
        }
        return Err(error("cannot write", &path)(e.error));
    }
    std::fs::File::open(state_dir).and_then(|d| d.sync_all()).map_err(error("cannot sync", state_dir))?;
    Ok(true)
}
