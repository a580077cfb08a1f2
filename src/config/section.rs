//! The one setter of the sections chosen by a method, `[backup]` and `[replica]`: the
//! override key `NAME` sets the method and `NAME.<field>` a field, through a round trip of
//! the section's serde table, so a value is checked exactly as in a scenario file.

use serde::Serialize;
use serde::de::DeserializeOwned;

/// What the setter needs to know of a section; each section has one as a `const`.
pub(crate) struct Section<T> {
    /// The section's name: the override key of its method and the prefix of its fields.
    pub name: &'static str,
    /// The method's values, named when one is wrong.
    pub methods: &'static [&'static str],
    /// The fields left out of the section's table while unset (`Option`s).
    pub optional: &'static [&'static str],
    /// The section's own rules; the message names the key.
    pub validate: fn(&T) -> Result<(), (String, &'static str)>,
}

impl<T: Serialize + DeserializeOwned> Section<T> {
    /// Sets one override key: `NAME` (the method, `field` None) or `NAME.<field>`.
    pub(crate) fn set(&self, settings: &mut T, field: Option<&str>, value: &toml::Value) -> Result<(), String> {
        let field = field.unwrap_or("method");
        let mut table = toml::Table::try_from(&*settings).map_err(|e| e.to_string())?;
        if !table.contains_key(field) && !self.optional.contains(&field) {
            let mut fields: Vec<&str> = table.keys().map(String::as_str).collect();
            fields.extend(self.optional.iter().filter(|f| !table.contains_key(**f)));
            return Err(format!(
                "unknown {name} setting `{field}`; use {name} (the method: {}) or {name}.<{}>",
                self.methods.join(", "),
                fields.join("|"),
                name = self.name,
            ));
        }
        table.insert(field.to_string(), value.clone());
        let updated: T = toml::Value::Table(table).try_into().map_err(|e: toml::de::Error| {
            let m = e.message().trim_end().to_string();
            if field == "method" {
                format!("{m}; {} methods: {}", self.name, self.methods.join(", "))
            } else {
                m
            }
        })?;
        (self.validate)(&updated).map_err(|(m, _)| m)?;
        *settings = updated;
        Ok(())
    }
}
