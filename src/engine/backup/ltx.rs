//! A Litestream file replica's LTX files (`ltx/LEVEL/MINTXID-MAXTXID.ltx`): whether there
//! are any, a copy of the finished ones, and the newest transaction they hold. A leaf: the
//! backup beside the run (`mod.rs`) and the restore after it (`restore.rs`) both read them.

use std::path::Path;

/// Whether the replica has an LTX file yet (Litestream has taken its first snapshot).
pub(super) fn has_ltx(dir: &Path) -> bool {
    let mut found = false;
    walk(dir, &mut |p| found |= p.extension().is_some_and(|e| e == "ltx"));
    found
}

fn walk(dir: &Path, f: &mut dyn FnMut(&Path)) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            walk(&p, f);
        } else {
            f(&p);
        }
    }
}

/// Copies the finished `.ltx` files of a replica (they are written once, under a temporary
/// name first), keeping the layout.
pub(super) fn copy_ltx(from: &Path, to: &Path) -> std::io::Result<()> {
    let mut result = Ok(());
    walk(from, &mut |p| {
        if p.extension().is_some_and(|e| e == "ltx")
            && let Ok(rel) = p.strip_prefix(from)
        {
            let dest = to.join(rel);
            let r = dest
                .parent()
                .map_or(Ok(()), std::fs::create_dir_all)
                .and_then(|()| std::fs::copy(p, &dest).map(|_| ()));
            if let Err(e) = r {
                result = Err(e);
            }
        }
    });
    result
}

/// The newest TXID of a file replica's finished LTX files (the upper end of their names),
/// at any level.
pub(super) fn max_txid(replica: &Path) -> Option<u64> {
    let mut max = None;
    walk(&replica.join("ltx"), &mut |p| {
        let txid = p
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(|n| n.strip_suffix(".ltx"))
            .and_then(|n| n.split_once('-'))
            .and_then(|(_, hi)| u64::from_str_radix(hi, 16).ok());
        max = max.max(txid);
    });
    max
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_highest_txid_of_a_file_replica() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(max_txid(dir.path()), None);
        assert!(!has_ltx(dir.path()));
        for (level, name) in [
            ("0", "0000000000000002-0000000000000002.ltx"),
            ("0", "000000000000000a-000000000000000a.ltx"),
            ("9", "0000000000000001-0000000000000004.ltx"),
            ("0", "000000000000000b-000000000000000b.ltx.tmp"),
        ] {
            let d = dir.path().join("ltx").join(level);
            std::fs::create_dir_all(&d).unwrap();
            std::fs::write(d.join(name), b"").unwrap();
        }
        assert_eq!(max_txid(dir.path()), Some(10));
        assert!(has_ltx(dir.path()));
        // The copy takes the finished files only, in their levels.
        let copy = tempfile::tempdir().unwrap();
        copy_ltx(dir.path(), copy.path()).unwrap();
        assert_eq!(max_txid(copy.path()), Some(10));
        assert!(
            !copy
                .path()
                .join("ltx/0/000000000000000b-000000000000000b.ltx.tmp")
                .exists()
        );
    }
}
