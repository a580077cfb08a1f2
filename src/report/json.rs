//! The JSON exporter: the report as is, pretty-printed.

use super::Exporter;
use super::model::Report;

pub(crate) struct Json;

impl Exporter for Json {
    fn render(&self, report: &Report) -> anyhow::Result<Vec<u8>> {
        let mut bytes = serde_json::to_vec_pretty(report)?;
        bytes.push(b'\n');
        Ok(bytes)
    }
}
