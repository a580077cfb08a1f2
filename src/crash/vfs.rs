//! The power-loss VFS: SQLite's file I/O routed to a simulated [`Disk`] in memory.
//!
//! Registered once under its own name (never the default) and used through the `vfs` open
//! parameter. Paths look like `/lh<mount id>/<file name>`; each [`Mount`] is one disk.
//! Directory syncs happen where SQLite's unix VFS does them: on the first sync of a journal
//! or WAL opened with the create flag, and on a delete with the sync-directory flag. The
//! wal-index lives in memory and is never durable. Device characteristics 0, sector 4096.
//! One connection per disk at a time: locks always succeed.
//!
//! All `unsafe` code of the crash module is in this file.

use super::disk::{Disk, Image};
use rusqlite::{Connection, OpenFlags, ffi};
use std::collections::HashMap;
use std::ffi::{CStr, c_char, c_int, c_void};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};

pub(crate) const VFS_NAME: &str = "litehammer-powerloss";
const VFS_NAME_C: &CStr = c"litehammer-powerloss";
const MAX_PATHNAME: c_int = 512;
const SECTOR_SIZE: c_int = 4096;

type SharedDisk = Arc<Mutex<Disk>>;

fn lock(disk: &SharedDisk) -> MutexGuard<'_, Disk> {
    disk.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn mounts() -> &'static Mutex<HashMap<u64, SharedDisk>> {
    static MOUNTS: OnceLock<Mutex<HashMap<u64, SharedDisk>>> = OnceLock::new();
    MOUNTS.get_or_init(Default::default)
}

static NEXT_MOUNT: AtomicU64 = AtomicU64::new(1);

/// A disk made reachable to SQLite through the VFS; unmounted on drop.
pub(crate) struct Mount {
    id: u64,
    disk: SharedDisk,
}

impl Mount {
    pub(crate) fn new(disk: Disk) -> rusqlite::Result<Self> {
        register()?;
        let id = NEXT_MOUNT.fetch_add(1, Ordering::Relaxed);
        let disk = Arc::new(Mutex::new(disk));
        mounts()
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(id, disk.clone());
        Ok(Self { id, disk })
    }

    pub(crate) fn path(&self, name: &str) -> String {
        format!("/lh{}/{name}", self.id)
    }

    pub(crate) fn disk(&self) -> MutexGuard<'_, Disk> {
        lock(&self.disk)
    }

    /// Opens (creating if needed) a database file on this disk.
    pub(crate) fn open(&self, name: &str) -> rusqlite::Result<Connection> {
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        Connection::open_with_flags_and_vfs(self.path(name), flags, VFS_NAME)
    }
}

impl Drop for Mount {
    fn drop(&mut self) {
        mounts().lock().unwrap_or_else(|p| p.into_inner()).remove(&self.id);
    }
}

/// Resets SQLite's PRNG (journal nonces, WAL salts) to a state determined by `seed`, so a trial
/// writes the same bytes every time. The PRNG is process-global: callers serialize trials.
pub(crate) fn reseed_prng(seed: u64) {
    let x = (seed as u32 | 1) as c_int;
    // SAFETY: SQLITE_TESTCTRL_PRNG_SEED takes (int seed, sqlite3 *db); a null db is documented
    // as allowed, and the call only stores the seed and resets the PRNG under SQLite's mutex.
    unsafe {
        ffi::sqlite3_test_control(ffi::SQLITE_TESTCTRL_PRNG_SEED, x, std::ptr::null_mut::<ffi::sqlite3>());
    }
}

fn register() -> rusqlite::Result<()> {
    static REGISTERED: OnceLock<c_int> = OnceLock::new();
    let rc = *REGISTERED.get_or_init(|| {
        let vfs = Box::leak(Box::new(vfs_definition()));
        // SAFETY: `vfs` is leaked, so it outlives every connection; its name is a static C
        // string; makeDflt = 0 keeps the unix VFS the default.
        unsafe { ffi::sqlite3_vfs_register(vfs, 0) }
    });
    if rc == ffi::SQLITE_OK {
        Ok(())
    } else {
        Err(rusqlite::Error::SqliteFailure(
            ffi::Error::new(rc),
            Some("cannot register the power-loss VFS".into()),
        ))
    }
}

fn vfs_definition() -> ffi::sqlite3_vfs {
    ffi::sqlite3_vfs {
        iVersion: 1,
        szOsFile: std::mem::size_of::<File>() as c_int,
        mxPathname: MAX_PATHNAME,
        pNext: std::ptr::null_mut(),
        zName: VFS_NAME_C.as_ptr(),
        pAppData: std::ptr::null_mut(),
        xOpen: Some(x_open),
        xDelete: Some(x_delete),
        xAccess: Some(x_access),
        xFullPathname: Some(x_full_pathname),
        xDlOpen: None,
        xDlError: None,
        xDlSym: None,
        xDlClose: None,
        xRandomness: Some(x_randomness),
        xSleep: Some(x_sleep),
        xCurrentTime: Some(x_current_time),
        xGetLastError: Some(x_get_last_error),
        xCurrentTimeInt64: None,
        xSetSystemCall: None,
        xGetSystemCall: None,
        xNextSystemCall: None,
    }
}

static IO_METHODS: ffi::sqlite3_io_methods = ffi::sqlite3_io_methods {
    iVersion: 2,
    xClose: Some(x_close),
    xRead: Some(x_read),
    xWrite: Some(x_write),
    xTruncate: Some(x_truncate),
    xSync: Some(x_sync),
    xFileSize: Some(x_file_size),
    xLock: Some(x_lock),
    xUnlock: Some(x_lock),
    xCheckReservedLock: Some(x_check_reserved_lock),
    xFileControl: Some(x_file_control),
    xSectorSize: Some(x_sector_size),
    xDeviceCharacteristics: Some(x_device_characteristics),
    xShmMap: Some(x_shm_map),
    xShmLock: Some(x_shm_lock),
    xShmBarrier: Some(x_shm_barrier),
    xShmUnmap: Some(x_shm_unmap),
    xFetch: None,
    xUnfetch: None,
};

/// SQLite's file object, extended with our state (SQLite allocates `szOsFile` bytes).
#[repr(C)]
struct File {
    base: ffi::sqlite3_file,
    state: *mut FileState,
}

enum FileState {
    /// A file on the simulated disk.
    Disk(DiskFile),
    /// Temp files, statement journals: memory only, gone at power loss, not disk events.
    Volatile(Image),
}

struct DiskFile {
    disk: SharedDisk,
    inode: usize,
    name: String,
    /// The unix VFS's UNIXFILE_DIRSYNC: the first sync also syncs the directory.
    dir_sync: bool,
}

/// The mount and file name of a VFS path `/lh<id>/<name>`.
fn resolve(path: &str) -> Option<(SharedDisk, String)> {
    let rest = path.strip_prefix("/lh")?;
    let (id, name) = rest.split_once('/')?;
    let id: u64 = id.parse().ok()?;
    let disk = mounts().lock().unwrap_or_else(|p| p.into_inner()).get(&id)?.clone();
    Some((disk, name.to_string()))
}

/// # Safety
/// `ptr` must be null or a valid NUL-terminated string.
unsafe fn path_of(ptr: *const c_char) -> Option<String> {
    if ptr.is_null() {
        return None;
    }
    // SAFETY: non-null and NUL-terminated per the caller's contract (SQLite passes C strings).
    Some(unsafe { CStr::from_ptr(ptr) }.to_string_lossy().into_owned())
}

/// # Safety
/// `file` must point to a `File` that `x_open` initialized and `x_close` has not freed.
unsafe fn state<'a>(file: *mut ffi::sqlite3_file) -> &'a mut FileState {
    // SAFETY: per the contract, the cast is to the struct SQLite allocated for us and
    // `state` holds the Box pointer x_open stored; SQLite does not use one file concurrently.
    unsafe { &mut *(*(file as *mut File)).state }
}

const TEMP_KINDS: c_int = ffi::SQLITE_OPEN_TEMP_DB
    | ffi::SQLITE_OPEN_TEMP_JOURNAL
    | ffi::SQLITE_OPEN_SUBJOURNAL
    | ffi::SQLITE_OPEN_TRANSIENT_DB;
const JOURNAL_KINDS: c_int = ffi::SQLITE_OPEN_MAIN_JOURNAL | ffi::SQLITE_OPEN_SUPER_JOURNAL | ffi::SQLITE_OPEN_WAL;

fn open_state(path: Option<String>, flags: c_int) -> Result<FileState, c_int> {
    let volatile = flags & (TEMP_KINDS | ffi::SQLITE_OPEN_DELETEONCLOSE) != 0;
    let Some(path) = path.filter(|_| !volatile) else {
        return Ok(FileState::Volatile(Image::default()));
    };
    let (disk, name) = resolve(&path).ok_or(ffi::SQLITE_CANTOPEN)?;
    let create = flags & ffi::SQLITE_OPEN_CREATE != 0;
    let inode = {
        let mut d = lock(&disk);
        if d.power_off {
            return Err(ffi::SQLITE_CANTOPEN);
        }
        match d.lookup(&name) {
            Some(inode) => inode,
            None if create => d.create(&name),
            None => return Err(ffi::SQLITE_CANTOPEN),
        }
    };
    Ok(FileState::Disk(DiskFile {
        disk,
        inode,
        name,
        dir_sync: create && flags & JOURNAL_KINDS != 0,
    }))
}

unsafe extern "C" fn x_open(
    _vfs: *mut ffi::sqlite3_vfs,
    z_name: ffi::sqlite3_filename,
    file: *mut ffi::sqlite3_file,
    flags: c_int,
    out_flags: *mut c_int,
) -> c_int {
    // SAFETY: SQLite passes a C string or null as the name.
    let path = unsafe { path_of(z_name) };
    let file = file as *mut File;
    match open_state(path, flags) {
        Ok(state) => {
            // SAFETY: SQLite allocated `szOsFile` = size_of::<File>() bytes at `file`; we
            // initialize them fully before returning OK. The Box is freed in x_close.
            unsafe {
                file.write(File {
                    base: ffi::sqlite3_file { pMethods: &IO_METHODS },
                    state: Box::into_raw(Box::new(state)),
                });
                if !out_flags.is_null() {
                    *out_flags = flags;
                }
            }
            ffi::SQLITE_OK
        }
        Err(rc) => {
            // SAFETY: as above; a null pMethods tells SQLite not to call xClose.
            unsafe { (*file).base.pMethods = std::ptr::null() };
            rc
        }
    }
}

unsafe extern "C" fn x_close(file: *mut ffi::sqlite3_file) -> c_int {
    // SAFETY: SQLite calls xClose once on a file x_open initialized; we take back the Box.
    unsafe {
        let file = file as *mut File;
        drop(Box::from_raw((*file).state));
        (*file).state = std::ptr::null_mut();
    }
    ffi::SQLITE_OK
}

unsafe extern "C" fn x_read(file: *mut ffi::sqlite3_file, buf: *mut c_void, amount: c_int, offset: i64) -> c_int {
    // SAFETY: `file` is open (SQLite contract); `buf` points to `amount` writable bytes.
    let (state, buf) = unsafe {
        (
            state(file),
            std::slice::from_raw_parts_mut(buf as *mut u8, amount as usize),
        )
    };
    let got = match state {
        FileState::Volatile(image) => image.read(offset as u64, buf),
        FileState::Disk(f) => {
            let d = lock(&f.disk);
            if d.power_off {
                return ffi::SQLITE_IOERR_READ;
            }
            d.inodes[f.inode].visible.read(offset as u64, buf)
        }
    };
    if got < buf.len() {
        ffi::SQLITE_IOERR_SHORT_READ
    } else {
        ffi::SQLITE_OK
    }
}

unsafe extern "C" fn x_write(file: *mut ffi::sqlite3_file, buf: *const c_void, amount: c_int, offset: i64) -> c_int {
    // SAFETY: `file` is open; `buf` points to `amount` readable bytes.
    let (state, data) = unsafe {
        (
            state(file),
            std::slice::from_raw_parts(buf as *const u8, amount as usize),
        )
    };
    let ok = match state {
        FileState::Volatile(image) => {
            image.write(offset as u64, data);
            true
        }
        FileState::Disk(f) => lock(&f.disk).write(f.inode, &f.name, offset as u64, data),
    };
    if ok { ffi::SQLITE_OK } else { ffi::SQLITE_IOERR_WRITE }
}

unsafe extern "C" fn x_truncate(file: *mut ffi::sqlite3_file, size: i64) -> c_int {
    // SAFETY: `file` is open.
    let ok = match unsafe { state(file) } {
        FileState::Volatile(image) => {
            image.truncate(size as u64);
            true
        }
        FileState::Disk(f) => lock(&f.disk).truncate(f.inode, &f.name, size as u64),
    };
    if ok { ffi::SQLITE_OK } else { ffi::SQLITE_IOERR_TRUNCATE }
}

unsafe extern "C" fn x_sync(file: *mut ffi::sqlite3_file, _flags: c_int) -> c_int {
    // SAFETY: `file` is open.
    let ok = match unsafe { state(file) } {
        FileState::Volatile(_) => true,
        FileState::Disk(f) => {
            let dir = std::mem::take(&mut f.dir_sync);
            lock(&f.disk).sync(f.inode, &f.name, dir)
        }
    };
    if ok { ffi::SQLITE_OK } else { ffi::SQLITE_IOERR_FSYNC }
}

unsafe extern "C" fn x_file_size(file: *mut ffi::sqlite3_file, size: *mut i64) -> c_int {
    // SAFETY: `file` is open.
    let len = match unsafe { state(file) } {
        FileState::Volatile(image) => image.len,
        FileState::Disk(f) => {
            let d = lock(&f.disk);
            if d.power_off {
                return ffi::SQLITE_IOERR_FSTAT;
            }
            d.inodes[f.inode].visible.len
        }
    };
    // SAFETY: SQLite passes a valid out pointer.
    unsafe { *size = len as i64 };
    ffi::SQLITE_OK
}

unsafe extern "C" fn x_lock(_file: *mut ffi::sqlite3_file, _level: c_int) -> c_int {
    ffi::SQLITE_OK
}

unsafe extern "C" fn x_check_reserved_lock(_file: *mut ffi::sqlite3_file, out: *mut c_int) -> c_int {
    // SAFETY: SQLite passes a valid out pointer. No other connection can hold a lock.
    unsafe { *out = 0 };
    ffi::SQLITE_OK
}

unsafe extern "C" fn x_file_control(_file: *mut ffi::sqlite3_file, _op: c_int, _arg: *mut c_void) -> c_int {
    ffi::SQLITE_NOTFOUND
}

unsafe extern "C" fn x_sector_size(_file: *mut ffi::sqlite3_file) -> c_int {
    SECTOR_SIZE
}

unsafe extern "C" fn x_device_characteristics(_file: *mut ffi::sqlite3_file) -> c_int {
    0
}

unsafe extern "C" fn x_shm_map(
    file: *mut ffi::sqlite3_file,
    region: c_int,
    size: c_int,
    extend: c_int,
    out: *mut *mut c_void,
) -> c_int {
    // SAFETY: `file` is open.
    let FileState::Disk(f) = (unsafe { state(file) }) else {
        return ffi::SQLITE_IOERR_SHMMAP;
    };
    let mut d = lock(&f.disk);
    if d.power_off {
        return ffi::SQLITE_IOERR_SHMMAP;
    }
    let regions = d.shm.entry(f.name.clone()).or_default();
    while extend != 0 && regions.len() <= region as usize {
        regions.push(vec![0u8; size as usize].into_boxed_slice());
    }
    let ptr = regions
        .get_mut(region as usize)
        .map_or(std::ptr::null_mut(), |r| r.as_mut_ptr() as *mut c_void);
    // SAFETY: valid out pointer from SQLite. The region is a Box that stays put until
    // x_shm_unmap removes it (moving the Vec moves the Box pointer, not the bytes).
    unsafe { *out = ptr };
    ffi::SQLITE_OK
}

unsafe extern "C" fn x_shm_lock(_file: *mut ffi::sqlite3_file, _offset: c_int, _n: c_int, _flags: c_int) -> c_int {
    ffi::SQLITE_OK
}

unsafe extern "C" fn x_shm_barrier(_file: *mut ffi::sqlite3_file) {
    std::sync::atomic::fence(Ordering::SeqCst);
}

unsafe extern "C" fn x_shm_unmap(file: *mut ffi::sqlite3_file, delete: c_int) -> c_int {
    // SAFETY: `file` is open.
    if let FileState::Disk(f) = unsafe { state(file) }
        && delete != 0
    {
        lock(&f.disk).shm.remove(&f.name);
    }
    ffi::SQLITE_OK
}

unsafe extern "C" fn x_delete(_vfs: *mut ffi::sqlite3_vfs, z_name: *const c_char, sync_dir: c_int) -> c_int {
    // SAFETY: SQLite passes a C string.
    let Some((disk, name)) = (unsafe { path_of(z_name) }).and_then(|p| resolve(&p)) else {
        return ffi::SQLITE_IOERR_DELETE_NOENT;
    };
    match lock(&disk).delete(&name, sync_dir != 0) {
        None => ffi::SQLITE_IOERR_DELETE_NOENT,
        Some(true) => ffi::SQLITE_OK,
        Some(false) => ffi::SQLITE_IOERR_DELETE,
    }
}

unsafe extern "C" fn x_access(
    _vfs: *mut ffi::sqlite3_vfs,
    z_name: *const c_char,
    _flags: c_int,
    out: *mut c_int,
) -> c_int {
    // SAFETY: SQLite passes a C string.
    let resolved = unsafe { path_of(z_name) }.and_then(|p| resolve(&p));
    let exists = match resolved {
        Some((disk, name)) => {
            let d = lock(&disk);
            if d.power_off {
                return ffi::SQLITE_IOERR_ACCESS;
            }
            d.lookup(&name).is_some()
        }
        None => false,
    };
    // SAFETY: valid out pointer from SQLite.
    unsafe { *out = c_int::from(exists) };
    ffi::SQLITE_OK
}

unsafe extern "C" fn x_full_pathname(
    _vfs: *mut ffi::sqlite3_vfs,
    z_name: *const c_char,
    n_out: c_int,
    z_out: *mut c_char,
) -> c_int {
    // SAFETY: SQLite passes a C string and an output buffer of `n_out` bytes.
    unsafe {
        let name = CStr::from_ptr(z_name).to_bytes_with_nul();
        if name.len() > n_out as usize {
            return ffi::SQLITE_CANTOPEN;
        }
        std::ptr::copy_nonoverlapping(name.as_ptr() as *const c_char, z_out, name.len());
    }
    ffi::SQLITE_OK
}

unsafe extern "C" fn x_randomness(_vfs: *mut ffi::sqlite3_vfs, n: c_int, out: *mut c_char) -> c_int {
    // Deterministic; SQLite only asks when its PRNG has no test seed.
    // SAFETY: SQLite passes a buffer of `n` bytes.
    unsafe { std::ptr::write_bytes(out, 0x5a, n as usize) };
    n
}

unsafe extern "C" fn x_sleep(_vfs: *mut ffi::sqlite3_vfs, micros: c_int) -> c_int {
    micros
}

unsafe extern "C" fn x_current_time(_vfs: *mut ffi::sqlite3_vfs, out: *mut f64) -> c_int {
    // A fixed Julian day (2024-01-01): trials must not depend on the clock.
    // SAFETY: valid out pointer from SQLite.
    unsafe { *out = 2_460_310.5 };
    ffi::SQLITE_OK
}

unsafe extern "C" fn x_get_last_error(_vfs: *mut ffi::sqlite3_vfs, _n: c_int, _out: *mut c_char) -> c_int {
    0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn database_on_the_simulated_disk_works_in_every_journal_mode() {
        for mode in ["delete", "truncate", "persist", "memory", "wal", "off"] {
            let mount = Mount::new(Disk::default()).unwrap();
            let conn = mount.open("t.db").unwrap();
            let got: String = conn
                .query_row(&format!("PRAGMA journal_mode = {mode}"), [], |r| r.get(0))
                .unwrap();
            assert_eq!(got, mode);
            conn.execute_batch("CREATE TABLE t(x); INSERT INTO t VALUES (1), (2);")
                .unwrap();
            drop(conn);
            let conn = mount.open("t.db").unwrap();
            let n: i64 = conn.query_row("SELECT sum(x) FROM t", [], |r| r.get(0)).unwrap();
            assert_eq!(n, 3, "{mode}");
            assert!(mount.disk().events > 0);
        }
    }

    /// Commits one row in delete mode; returns whether the journal's unlink is durable.
    fn journal_unlink_durable(synchronous: &str) -> bool {
        let mount = Mount::new(Disk::default()).unwrap();
        let conn = mount.open("d.db").unwrap();
        conn.execute_batch(&format!(
            "PRAGMA journal_mode = delete; PRAGMA synchronous = {synchronous}; CREATE TABLE t(x);"
        ))
        .unwrap();
        mount.disk().settle();
        conn.execute_batch("INSERT INTO t VALUES (1)").unwrap();
        let disk = mount.disk();
        assert!(
            disk.lookup("d.db-journal").is_none(),
            "the process sees the journal gone"
        );
        !disk.durable_names.contains_key("d.db-journal")
    }

    #[test]
    fn directory_syncs_happen_where_the_unix_vfs_does_them() {
        // The new journal's first sync syncs the directory (so the journal is durable), but
        // its delete at commit is durable only with the sync-directory flag of EXTRA.
        assert!(!journal_unlink_durable("full"));
        assert!(journal_unlink_durable("extra"));
    }

    #[test]
    fn files_of_a_mount_are_named_on_its_disk() {
        let mount = Mount::new(Disk::default()).unwrap();
        let conn = mount.open("a.db").unwrap();
        conn.execute_batch("PRAGMA journal_mode = persist; CREATE TABLE t(x);")
            .unwrap();
        let names: Vec<String> = mount.disk().names.keys().cloned().collect();
        assert_eq!(names, ["a.db", "a.db-journal"]);
    }
}
