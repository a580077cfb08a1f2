//! Typed errors inside the library; `anyhow` only at the CLI edge.

use std::fmt;
use std::ops::Range;

/// Bad input: a scenario file, an override or a flag. Exit code 2.
#[derive(Debug, thiserror::Error)]
pub(crate) struct InputError {
    /// The file (or "built-in scenario NAME", or the flag) the problem is in.
    pub origin: String,
    /// 1-based line and column, when the problem has a place in a file.
    pub position: Option<(usize, usize)>,
    /// The key or path of the offending setting, when known.
    pub key: Option<String>,
    pub message: String,
    /// The offending source line, shown under the message.
    pub snippet: Option<String>,
}

impl InputError {
    pub(crate) fn new(origin: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            origin: origin.into(),
            position: None,
            key: None,
            message: message.into(),
            snippet: None,
        }
    }

    pub(crate) fn with_key(mut self, key: impl Into<String>) -> Self {
        self.key = Some(key.into());
        self
    }

    /// Places the error at a byte span of `text`, taking the key from the line when not known.
    pub(crate) fn at(mut self, text: &str, span: Range<usize>) -> Self {
        let start = span.start.min(text.len());
        let line_start = text[..start].rfind('\n').map_or(0, |i| i + 1);
        let line_end = text[start..].find('\n').map_or(text.len(), |i| start + i);
        let line_no = text[..line_start].matches('\n').count() + 1;
        let col = text[line_start..start].chars().count() + 1;
        let line = &text[line_start..line_end];
        self.position = Some((line_no, col));
        self.snippet = Some(line.trim_end().to_string());
        if self.key.is_none() {
            self.key = key_on_line(line);
        }
        self
    }
}

fn key_on_line(line: &str) -> Option<String> {
    let (key, _) = line.split_once('=')?;
    let key = key.trim().trim_start_matches(['{', ',', ' ']).trim();
    let key = key.rsplit([',', '{']).next().unwrap_or(key).trim();
    (!key.is_empty() && !key.contains(['"', '\''])).then(|| key.to_string())
}

/// `text` with every password it may carry replaced by `***`: the userinfo of a URL
/// (`scheme://user:PASSWORD@host`) and every `password=VALUE` (a URL's query parameter or a
/// libpq key/value string, the value up to `&`, white space or the end, or quoted). Applied
/// to every error litehammer prints, and to the server a report names.
pub(crate) fn redact_secrets(text: &str) -> String {
    let mut out = redact_userinfo(text);
    let mut from = 0;
    loop {
        let lower = out.to_ascii_lowercase();
        let Some(i) = lower[from..].find("password").map(|i| i + from) else {
            break;
        };
        let mut j = i + "password".len();
        let bytes = out.as_bytes();
        while j < bytes.len() && bytes[j] == b' ' {
            j += 1;
        }
        if j >= bytes.len() || bytes[j] != b'=' {
            from = i + 1;
            continue;
        }
        j += 1;
        while j < bytes.len() && bytes[j] == b' ' {
            j += 1;
        }
        let end = match bytes.get(j) {
            Some(&q @ (b'\'' | b'"')) => {
                let mut k = j + 1;
                while k < bytes.len() && bytes[k] != q {
                    k += if bytes[k] == b'\\' { 2 } else { 1 };
                }
                (k + 1).min(bytes.len())
            }
            _ => out[j..]
                .find(|c: char| c == '&' || c == '`' || c == '\'' || c == '"' || c.is_whitespace())
                .map_or(out.len(), |k| j + k),
        };
        if end > j {
            out.replace_range(j..end, "***");
        }
        from = j + 3;
    }
    out
}

/// `scheme://user:PASSWORD@host` → `scheme://user:***@host`, for every URL in `text`.
fn redact_userinfo(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find("://") {
        out.push_str(&rest[..i + 3]);
        rest = &rest[i + 3..];
        // The authority ends at the first `/`, `?`, `#` or white space; its userinfo at the last `@`.
        let end = rest
            .find(|c: char| matches!(c, '/' | '?' | '#' | '`' | '\'' | '"') || c.is_whitespace())
            .unwrap_or(rest.len());
        let authority = &rest[..end];
        if let Some(at) = authority.rfind('@')
            && let Some(colon) = authority[..at].find(':')
        {
            out.push_str(&authority[..colon]);
            out.push_str(":***");
            out.push_str(&authority[at..]);
        } else {
            out.push_str(authority);
        }
        rest = &rest[end..];
    }
    out.push_str(rest);
    out
}

/// Text for the terminal: control characters (an escape sequence, a carriage return) shown
/// escaped; line breaks too unless `lines` (a message of several lines of litehammer's own).
/// The origin, key and source line of an error often quote a flag's value or a report's
/// text, which may come from anyone.
pub(crate) fn terminal(text: &str, lines: bool) -> String {
    if !text.chars().any(char::is_control) {
        return text.to_string();
    }
    text.chars()
        .flat_map(|c| match c {
            '\n' if lines => vec!['\n'],
            '\n' => vec!['\\', 'n'],
            '\t' => vec!['\t'],
            c if c.is_control() => c.escape_unicode().collect(),
            c => vec![c],
        })
        .collect()
}

impl fmt::Display for InputError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&terminal(&self.origin, false))?;
        if let Some((line, col)) = self.position {
            write!(f, ":{line}:{col}")?;
        }
        if let Some(key) = &self.key {
            write!(f, ": key `{}`", terminal(key, false))?;
        }
        write!(f, ": {}", terminal(&self.message, true))?;
        if let (Some((line, _)), Some(snippet)) = (self.position, &self.snippet) {
            write!(f, "\n    {line} | {}", terminal(snippet, false))?;
        }
        Ok(())
    }
}

/// How a command ended, mapped to the process exit code by `main`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Status {
    Ok,
    /// A run failed or verification found a problem.
    Failed,
    Interrupted,
    /// Another exit code: `capture` exits with its command's.
    Code(u8),
}

impl Status {
    pub(crate) fn code(self) -> u8 {
        match self {
            Status::Ok => 0,
            Status::Failed => 1,
            Status::Interrupted => 130,
            Status::Code(c) => c,
        }
    }
}

/// The bad input an error is: the error itself, or the source of a typed error that passes
/// it on (as `RenderError::Input` does).
fn input_of(err: &anyhow::Error) -> Option<&InputError> {
    err.chain().find_map(|e| e.downcast_ref::<InputError>())
}

pub(crate) fn exit_code(err: &anyhow::Error) -> u8 {
    if input_of(err).is_some() { 2 } else { 1 }
}

pub(crate) fn render(err: &anyhow::Error) -> String {
    if let Some(input) = input_of(err) {
        return redact_secrets(&input.to_string());
    }
    redact_secrets(&terminal(&format!("{err:#}"), true))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn places_error_on_line_and_column_with_key() {
        let text = "name = \"x\"\n[[group]]\nworkers = 0\n";
        let span = text.find('0').unwrap()..text.find('0').unwrap() + 1;
        let err = InputError::new("f.toml", "must be positive").at(text, span);
        assert_eq!(err.position, Some((3, 11)));
        assert_eq!(err.key.as_deref(), Some("workers"));
        assert_eq!(
            err.to_string(),
            "f.toml:3:11: key `workers`: must be positive\n    3 | workers = 0"
        );
    }

    #[test]
    fn escapes_control_characters_from_flags_and_reports() {
        let err = InputError::new("--config a\u{1b}[2J\nb", "no configuration \u{1b}]0;x\u{7}");
        let text = err.to_string();
        assert!(!text.contains('\u{1b}') && !text.contains('\u{7}'), "{text}");
        assert!(!text.contains('\n'), "{text}");
        assert!(text.starts_with("--config a\\u{1b}[2J\\nb"), "{text}");
    }

    #[test]
    fn passwords_never_survive() {
        for (text, secret) in [
            ("cannot connect to postgres://u:s3cret@h:5432/db: refused", "s3cret"),
            ("postgresql://u:s3cret@h/db?sslmode=disable", "s3cret"),
            ("postgres://u@h/db?password=s3cret&sslmode=disable", "s3cret"),
            ("postgres://u@h/db?sslmode=disable&PASSWORD=s3cret", "s3cret"),
            (
                "malformed PostgreSQL URL `host=h password=s3cret dbname=x`: bad",
                "s3cret",
            ),
            ("host=h password = 's3 cret' dbname=x", "cret"),
            ("--target postgres=postgres://a:s3cret@[::1]:5432/x", "s3cret"),
            ("u:p@ss@h: postgres://u:p@ss@h/db", "ss@h/db"),
        ] {
            let shown = redact_secrets(text);
            assert!(!shown.contains(secret), "{text} → {shown}");
        }
        assert_eq!(
            redact_secrets("postgres://u:pw@h:5432/db"),
            "postgres://u:***@h:5432/db"
        );
        assert_eq!(redact_secrets("postgres://u@h/db"), "postgres://u@h/db");
        assert_eq!(redact_secrets("no password here"), "no password here");
    }

    #[test]
    fn key_inside_inline_table() {
        assert_eq!(
            key_on_line("populate = [{ table = \"t\", rows = -1 }]").as_deref(),
            Some("populate")
        );
        assert_eq!(key_on_line("  { sql = \"x\", params = [1] }").as_deref(), Some("sql"));
    }
}
