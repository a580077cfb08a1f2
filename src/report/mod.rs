//! Reports: the model (JSON is the source of truth) and exporters, each Report → bytes.

pub mod durability;
pub mod json;
pub mod model;
pub mod table;

use model::Report;

/// An output format: renders a whole report to bytes, no I/O.
pub trait Exporter {
    fn render(&self, report: &Report) -> anyhow::Result<Vec<u8>>;
}

/// Writes a file atomically (temp file + rename), so a reader never sees half a report.
pub fn write_file(path: &std::path::Path, bytes: &[u8]) -> std::io::Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".partial");
    std::fs::write(&tmp, bytes)?;
    std::fs::rename(&tmp, path)
}
