//! Writing one JSON line without allocating: `{"v":1,"kind":...,"ts":...,"pid":...,"tid":...,...}`.

use std::io::Write;

pub struct Line<'a> {
    buf: &'a mut Vec<u8>,
}

impl<'a> Line<'a> {
    /// Starts a line with the fields every line has.
    pub fn start(buf: &'a mut Vec<u8>, kind: &str, ts: i64, pid: i32, tid: i32) -> Line<'a> {
        Line::start_with(buf, kind, ts, |b| {
            b.extend_from_slice(b",\"pid\":");
            push_int(b, i64::from(pid));
            b.extend_from_slice(b",\"tid\":");
            push_int(b, i64::from(tid));
        })
    }

    fn start_with(buf: &'a mut Vec<u8>, kind: &str, ts: i64, ids: impl FnOnce(&mut Vec<u8>)) -> Line<'a> {
        const _: () = assert!(
            litehammer_trace::protocol::FORMAT_VERSION == 1,
            "update the line prefix"
        );
        buf.extend_from_slice(b"{\"v\":1,\"kind\":\"");
        buf.extend_from_slice(kind.as_bytes());
        buf.extend_from_slice(b"\",\"ts\":");
        push_int(buf, ts);
        ids(buf);
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

/// `,"pid":PID,"tid":TID`, the same on every line a thread writes.
pub fn pid_tid(pid: i32, tid: i32) -> Vec<u8> {
    let mut b = Vec::with_capacity(32);
    b.extend_from_slice(b",\"pid\":");
    push_int(&mut b, i64::from(pid));
    b.extend_from_slice(b",\"tid\":");
    push_int(&mut b, i64::from(tid));
    b
}

/// Two decimal digits for every value below 100.
const DIGITS2: [u8; 200] = {
    let mut t = [0u8; 200];
    let mut i = 0;
    while i < 100 {
        t[2 * i] = b'0' + (i / 10) as u8;
        t[2 * i + 1] = b'0' + (i % 10) as u8;
        i += 1;
    }
    t
};

/// Appends the decimal digits of `v` (no `fmt` machinery, two digits a step, written in place:
/// this runs for every field).
#[inline]
pub fn push_int(buf: &mut Vec<u8>, v: i64) {
    let mut n = v.unsigned_abs();
    let len = digits(n) + usize::from(v < 0);
    buf.reserve(len);
    let at = buf.len();
    // SAFETY: `len` bytes were reserved past `at`; all of them are written before set_len.
    unsafe {
        let p = buf.as_mut_ptr().add(at);
        if v < 0 {
            *p = b'-';
        }
        let mut i = len;
        while n >= 100 {
            let d = (n % 100) as usize * 2;
            n /= 100;
            i -= 2;
            *p.add(i) = DIGITS2[d];
            *p.add(i + 1) = DIGITS2[d + 1];
        }
        if n >= 10 {
            let d = n as usize * 2;
            i -= 2;
            *p.add(i) = DIGITS2[d];
            *p.add(i + 1) = DIGITS2[d + 1];
        } else {
            i -= 1;
            *p.add(i) = b'0' + n as u8;
        }
        buf.set_len(at + len);
    }
}

/// Powers of ten up to 10^19.
const POW10: [u64; 20] = {
    let mut t = [1u64; 20];
    let mut i = 1;
    while i < 20 {
        t[i] = t[i - 1] * 10;
        i += 1;
    }
    t
};

/// The number of decimal digits of `n` (from its bit length, no loop).
#[inline]
pub fn digits(n: u64) -> usize {
    let bits = 64 - (n | 1).leading_zeros() as usize;
    // floor(bits * log10(2)): the digit count of 2^(bits-1) or one less.
    let guess = (bits * 1233) >> 12;
    if guess < 20 && n >= POW10[guess] {
        guess + 1
    } else {
        guess.max(1)
    }
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
    escape_inner(buf, s);
    buf.push(b'"');
}

/// Appends `s` JSON-escaped, without the quotes.
pub fn escape_inner(buf: &mut Vec<u8>, s: &str) {
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
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ints() {
        for v in [
            0,
            7,
            -7,
            9,
            10,
            99,
            100,
            -101,
            999,
            1000,
            1234567890123,
            9_999_999_999_999_999,
            10_000_000_000_000_000,
            i64::MIN,
            i64::MIN + 1,
            i64::MAX,
        ] {
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
