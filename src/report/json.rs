//! The JSON exporter: the report as is, pretty-printed.

use super::model::Report;
use super::{Exporter, RenderError};

pub(crate) struct Json;

impl Exporter for Json {
    fn render(&self, report: &Report) -> Result<Vec<u8>, RenderError> {
        let mut bytes = serde_json::to_vec_pretty(report)?;
        bytes.push(b'\n');
        Ok(bytes)
    }
}
