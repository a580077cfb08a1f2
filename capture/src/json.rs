//! Writing one JSON line without allocating: `{"v":1,"kind":...,"ts":...,"pid":...,"tid":...,...}`.

use std::io::Write;

pub struct Line<'a> {
    buf: &'a mut Vec<u8>,
}

impl<'a> Line<'a> {
    /// Starts a line with the fields every line has.
    pub fn start(buf: &'a mut Vec<u8>, kind: &str, ts: i64, pid: i32, tid: i32) -> Line<'a> {
        buf.extend_from_slice(b"{\"v\":");
        let _ = write!(buf, "{}", crate::protocol::FORMAT_VERSION);
        buf.extend_from_slice(b",\"kind\":\"");
        buf.extend_from_slice(kind.as_bytes());
        let _ = write!(buf, "\",\"ts\":{ts},\"pid\":{pid},\"tid\":{tid}");
        Line { buf }
    }

    fn key(&mut self, k: &str) {
        self.buf.extend_from_slice(b",\"");
        self.buf.extend_from_slice(k.as_bytes());
        self.buf.extend_from_slice(b"\":");
    }

    pub fn int(&mut self, k: &str, v: i64) {
        self.key(k);
        let _ = write!(self.buf, "{v}");
    }

    pub fn opt_int(&mut self, k: &str, v: Option<i64>) {
        match v {
            Some(v) => self.int(k, v),
            None => self.null(k),
        }
    }

    pub fn bool(&mut self, k: &str, v: bool) {
        self.key(k);
        self.buf.extend_from_slice(if v { b"true" } else { b"false" });
    }

    pub fn null(&mut self, k: &str) {
        self.key(k);
        self.buf.extend_from_slice(b"null");
    }

    pub fn str(&mut self, k: &str, v: &str) {
        self.key(k);
        escape(self.buf, v);
    }

    pub fn opt_str(&mut self, k: &str, v: Option<&str>) {
        match v {
            Some(v) => self.str(k, v),
            None => self.null(k),
        }
    }

    pub fn end(self) {
        self.buf.extend_from_slice(b"}\n");
    }
}

/// Appends `s` as a JSON string (quotes included).
pub fn escape(buf: &mut Vec<u8>, s: &str) {
    buf.push(b'"');
    let b = s.as_bytes();
    let mut start = 0;
    for (i, &c) in b.iter().enumerate() {
        let esc: &[u8] = match c {
            b'"' => b"\\\"",
            b'\\' => b"\\\\",
            b'\n' => b"\\n",
            b'\r' => b"\\r",
            b'\t' => b"\\t",
            0..=0x1f | 0x7f => b"",
            _ => continue,
        };
        buf.extend_from_slice(&b[start..i]);
        if esc.is_empty() {
            let _ = write!(buf, "\\u{:04x}", c);
        } else {
            buf.extend_from_slice(esc);
        }
        start = i + 1;
    }
    buf.extend_from_slice(&b[start..]);
    buf.push(b'"');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes() {
        let mut b = Vec::new();
        escape(&mut b, "a\"b\\c\nd\u{1}é");
        assert_eq!(String::from_utf8(b).unwrap(), r#""a\"b\\c\nd\u0001é""#);
        let mut b = Vec::new();
        let mut l = Line::start(&mut b, "stmt", 5, 1, 2);
        l.opt_int("n", None);
        l.bool("x", true);
        l.end();
        assert_eq!(
            String::from_utf8(b).unwrap(),
            "{\"v\":1,\"kind\":\"stmt\",\"ts\":5,\"pid\":1,\"tid\":2,\"n\":null,\"x\":true}\n"
        );
    }
}
