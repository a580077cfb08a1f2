//! Output files (reports, exports, probe JSON): checked before anything runs, and written
//! through a unique temporary file in the target's own directory that is then renamed over
//! the target. litehammer never writes through a symbolic link, never replaces anything but
//! a regular file, and never overwrites its own input or another output of the same command.

use crate::error::InputError;
use std::io::Write;
use std::path::{Component, Path, PathBuf};

/// A file a command is about to write, with the flag that named it (for messages).
#[derive(Clone, Debug)]
pub(crate) struct Target {
    pub(crate) flag: String,
    pub(crate) path: PathBuf,
}

impl Target {
    pub(crate) fn new(flag: &str, path: &Path) -> Self {
        Self {
            flag: flag.to_string(),
            path: path.to_path_buf(),
        }
    }
}

/// Checks every output before the first run: each is a regular file or does not exist yet,
/// its directory exists (it is created) and is writable, and no output is an input (the
/// scenario file, the report being rendered) or another output of the same command.
pub(crate) fn check(targets: &[Target], inputs: &[(&str, &Path)]) -> Result<(), InputError> {
    let mut seen: Vec<(&Target, PathBuf)> = Vec::new();
    for t in targets {
        let err = |m: String| InputError::new(format!("{} {}", t.flag, t.path.display()), m);
        if t.path.as_os_str().as_encoded_bytes().ends_with(b"/") {
            return Err(err("is a directory; give a file name".into()));
        }
        kind_ok(&t.path).map_err(|e| err(e.to_string()))?;
        let dir = parent(&t.path);
        std::fs::create_dir_all(&dir).map_err(|e| err(format!("cannot create its directory: {e}")))?;
        tempfile::NamedTempFile::new_in(&dir).map_err(|e| err(format!("cannot write in {}: {e}", dir.display())))?;
        let id = normalized(&t.path);
        for (what, input) in inputs {
            if same_file(&t.path, &id, input) {
                return Err(err(format!("is the {what}; litehammer does not overwrite its input")));
            }
        }
        if let Some((first, _)) = seen.iter().find(|(_, other)| *other == id) {
            return Err(err(format!(
                "is also given to {}: give each output its own file",
                first.flag
            )));
        }
        seen.push((t, id));
    }
    Ok(())
}

/// Why an output path may not be replaced.
#[derive(Debug, thiserror::Error)]
enum NotAFile {
    #[error("is a symbolic link; litehammer does not write through links (give the real path)")]
    Link,
    #[error("is a directory; give a file name")]
    Directory,
    #[error("is not a regular file (a device, FIFO or socket); litehammer only replaces regular files")]
    Special,
}

/// What may be replaced: nothing yet, or a regular file (not a link, directory, device, FIFO).
fn kind_ok(path: &Path) -> Result<(), NotAFile> {
    match std::fs::symlink_metadata(path) {
        Ok(m) if m.file_type().is_symlink() => Err(NotAFile::Link),
        Ok(m) if m.is_dir() => Err(NotAFile::Directory),
        Ok(m) if !m.is_file() => Err(NotAFile::Special),
        _ => Ok(()),
    }
}

/// Writes `bytes` to `path` atomically: a new temporary file in the same directory, then a
/// rename over the target. A reader never sees half a file, and a link or file planted at
/// any fixed name is never followed.
pub(crate) fn write(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = parent(path);
    std::fs::create_dir_all(&dir)?;
    kind_ok(path).map_err(std::io::Error::other)?;
    let mut tmp = tempfile::Builder::new()
        .prefix(".litehammer-")
        .suffix(".partial")
        .tempfile_in(&dir)?;
    tmp.write_all(bytes)?;
    tmp.flush()?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        tmp.as_file().set_permissions(std::fs::Permissions::from_mode(0o644))?;
    }
    tmp.persist(path).map_err(|e| e.error)?;
    Ok(())
}

/// Claims a new file at `path`, or at `stem-2.ext`, `stem-3.ext`, ... when that exists
/// (`O_EXCL`): a default report name never replaces an earlier report.
pub(crate) fn claim_new(path: &Path) -> std::io::Result<PathBuf> {
    let dir = parent(path);
    std::fs::create_dir_all(&dir)?;
    let stem = path
        .file_stem()
        .map(|s| s.to_string_lossy().to_string())
        .unwrap_or_default();
    let ext = path
        .extension()
        .map(|e| format!(".{}", e.to_string_lossy()))
        .unwrap_or_default();
    for k in 1..10_000 {
        let candidate = if k == 1 {
            path.to_path_buf()
        } else {
            dir.join(format!("{stem}-{k}{ext}"))
        };
        match std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&candidate)
        {
            Ok(_) => return Ok(candidate),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e),
        }
    }
    Err(std::io::Error::other(format!(
        "no free file name like {}",
        path.display()
    )))
}

fn parent(path: &Path) -> PathBuf {
    match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// The absolute path with `.` and `..` resolved, its directory resolved through links.
fn normalized(path: &Path) -> PathBuf {
    let dir = parent(path);
    let dir = dir.canonicalize().unwrap_or_else(|_| lexical(&dir));
    match path.file_name() {
        Some(name) => dir.join(name),
        None => dir,
    }
}

fn lexical(path: &Path) -> PathBuf {
    let abs = std::env::current_dir()
        .map(|d| d.join(path))
        .unwrap_or_else(|_| path.to_path_buf());
    let mut out = PathBuf::new();
    for c in abs.components() {
        match c {
            Component::ParentDir => {
                out.pop();
            }
            Component::CurDir => {}
            other => out.push(other),
        }
    }
    out
}

fn same_file(target: &Path, target_id: &Path, input: &Path) -> bool {
    if normalized(input) == *target_id {
        return true;
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        if let (Ok(a), Ok(b)) = (std::fs::metadata(target), std::fs::metadata(input)) {
            return a.dev() == b.dev() && a.ino() == b.ino();
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_replaces_a_link_planted_at_the_old_temp_name_without_following_it() {
        let dir = tempfile::tempdir().unwrap();
        let victim = dir.path().join("victim");
        std::fs::write(&victim, "keep").unwrap();
        std::os::unix::fs::symlink(&victim, dir.path().join("r.json.partial")).unwrap();
        write(&dir.path().join("r.json"), b"{}").unwrap();
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "keep");
        assert_eq!(std::fs::read_to_string(dir.path().join("r.json")).unwrap(), "{}");
    }

    #[test]
    fn check_refuses_links_directories_inputs_and_duplicates() {
        let dir = tempfile::tempdir().unwrap();
        let p = |n: &str| dir.path().join(n);
        std::fs::write(p("s.toml"), "x").unwrap();
        std::os::unix::fs::symlink(p("s.toml"), p("link")).unwrap();
        std::fs::create_dir(p("sub")).unwrap();
        let input = [("scenario file", p("s.toml"))];
        let inputs: Vec<(&str, &Path)> = input.iter().map(|(w, q)| (*w, q.as_path())).collect();
        for (target, why) in [
            (p("link"), "symbolic link"),
            (p("sub"), "directory"),
            (dir.path().join("sub/../s.toml"), "scenario file"),
        ] {
            let e = check(&[Target::new("-o", &target)], &inputs).unwrap_err();
            assert!(e.message.contains(why), "{target:?}: {e}");
        }
        let twice = [
            Target::new("-o", &p("a.json")),
            Target::new("--export-html", &p("./a.json")),
        ];
        assert!(check(&twice, &inputs).unwrap_err().message.contains("-o"));
        check(&[Target::new("-o", &p("new/r.json"))], &inputs).unwrap();
    }

    #[test]
    fn claim_new_never_reuses_a_name() {
        let dir = tempfile::tempdir().unwrap();
        let a = claim_new(&dir.path().join("r.json")).unwrap();
        let b = claim_new(&dir.path().join("r.json")).unwrap();
        assert_ne!(a, b);
        assert!(b.ends_with("r-2.json"));
    }
}
