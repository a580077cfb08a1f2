//! Writing one JSON line without allocating: `{"v":1,"kind":...,"ts":...,"pid":...,"tid":...,...}`.

use std::io::Write;

pub struct Line<'a> {
    buf: &'a mut Vec<u8>,
}

impl<'a> Line<'a> {
    /// Starts a line with the fields every line has.
    pub fn start(buf: &'a mut Vec<u8>, kind: &str, ts: i64, pid: i32, tid: i32) -> Line<'a> {
        buf.extend_from_slice(b"{\"v\":");
        push_int(buf, i64::from(crate::protocol::FORMAT_VERSION));
        buf.extend_from_slice(b",\"kind\":\"");
        buf.extend_from_slice(kind.as_bytes());
        buf.extend_from_slice(b"\",\"ts\":");
        push_int(buf, ts);
        buf.extend_from_slice(b",\"pid\":");
        push_int(buf, i64::from(pid));
        buf.extend_from_slice(b",\"tid\":");
        push_int(buf, i64::from(tid));
        Line { buf }
    }

    fn key(&mut self, k: &str) {
        self.buf.extend_from_slice(b",\"");
        self.buf.extend_from_slice(k.as_bytes());
        self.buf.extend_from_slice(b"\":");
    }

    pub fn int(&mut self, k: &str, v: i64) {
        self.key(k);
        push_int(self.buf, v);
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

/// Appends the decimal digits of `v` (no `fmt` machinery: this runs for every field).
pub fn push_int(buf: &mut Vec<u8>, v: i64) {
    let mut tmp = [0u8; 20];
    let mut i = tmp.len();
    let mut n = v.unsigned_abs();
    loop {
        i -= 1;
        tmp[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    if v < 0 {
        buf.push(b'-');
    }
    buf.extend_from_slice(&tmp[i..]);
}

/// Bytes that need escaping in a JSON string: controls, DEL, `"` and `\\`.
const NEEDS_ESCAPE: [bool; 256] = {
    let mut t = [false; 256];
    let mut i = 0;
    while i < 0x20 {
        t[i] = true;
        i += 1;
    }
    t[0x7f] = true;
    t[b'"' as usize] = true;
    t[b'\\' as usize] = true;
    t
};

/// Appends `s` as a JSON string (quotes included).
pub fn escape(buf: &mut Vec<u8>, s: &str) {
    buf.push(b'"');
    let b = s.as_bytes();
    let mut start = 0;
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        if !NEEDS_ESCAPE[c as usize] {
            i += 1;
            continue;
        }
        buf.extend_from_slice(&b[start..i]);
        match c {
            b'"' => buf.extend_from_slice(b"\\\""),
            b'\\' => buf.extend_from_slice(b"\\\\"),
            b'\n' => buf.extend_from_slice(b"\\n"),
            b'\r' => buf.extend_from_slice(b"\\r"),
            b'\t' => buf.extend_from_slice(b"\\t"),
            _ => {
                let _ = write!(buf, "\\u{:04x}", c);
            }
        }
        i += 1;
        start = i;
    }
    buf.extend_from_slice(&b[start..]);
    buf.push(b'"');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ints() {
        for v in [0, 7, -7, 10, 1234567890123, i64::MIN, i64::MAX] {
            let mut b = Vec::new();
            push_int(&mut b, v);
            assert_eq!(String::from_utf8(b).unwrap(), v.to_string());
        }
    }

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
