//! The dqlite wire protocol, version 1 (canonical/dqlite `doc/protocol.md`, checked against
//! go-dqlite 1.11's `internal/protocol`): 8-byte words, little endian; a message is a
//! header word (body length in words, type, revision, unused) and a body of fields.
//! Encoding writes into a reused buffer; decoding reads from a received body.

use rusqlite::types::{Value, ValueRef};

/// The protocol version sent right after connecting.
pub(crate) const VERSION: u64 = 1;

/// Request types.
pub(crate) mod request {
    pub const LEADER: u8 = 0;
    pub const OPEN: u8 = 3;
    pub const PREPARE: u8 = 4;
    pub const EXEC: u8 = 5;
    pub const QUERY: u8 = 6;
    pub const FINALIZE: u8 = 7;
    pub const EXEC_SQL: u8 = 8;
    pub const QUERY_SQL: u8 = 9;
    pub const CLUSTER: u8 = 16;
}

/// Response types.
pub(crate) mod response {
    pub const FAILURE: u8 = 0;
    pub const NODE: u8 = 1;
    pub const NODES: u8 = 3;
    pub const DB: u8 = 4;
    pub const STMT: u8 = 5;
    pub const RESULT: u8 = 6;
    pub const ROWS: u8 = 7;
    pub const EMPTY: u8 = 8;
}

/// Value type codes (tuples of parameters and of row values).
mod types {
    pub const INTEGER: u8 = 1;
    pub const FLOAT: u8 = 2;
    pub const TEXT: u8 = 3;
    pub const BLOB: u8 = 4;
    pub const NULL: u8 = 5;
    pub const UNIXTIME: u8 = 9;
    pub const ISO8601: u8 = 10;
    pub const BOOLEAN: u8 = 11;
}

/// The end marker of the last batch of rows, and of a batch with more to come.
const ROWS_DONE: u8 = 0xff;
const ROWS_PART: u8 = 0xee;

/// A malformed message from the server.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("malformed dqlite message: {0}")]
pub(crate) struct Malformed(pub String);

/// A request under construction: the header word first, then the body.
#[derive(Default)]
pub(crate) struct Encoder {
    buf: Vec<u8>,
}

impl Encoder {
    /// Starts a request of type `kind` (clears the buffer, keeps its capacity).
    pub(crate) fn start(&mut self, kind: u8) -> &mut Self {
        self.buf.clear();
        self.buf.extend_from_slice(&[0, 0, 0, 0, kind, 0, 0, 0]);
        self
    }

    pub(crate) fn u64(&mut self, v: u64) -> &mut Self {
        self.buf.extend_from_slice(&v.to_le_bytes());
        self
    }

    /// Two uint32 fields (database and statement id) in one word.
    pub(crate) fn u32_pair(&mut self, a: u32, b: u32) -> &mut Self {
        self.buf.extend_from_slice(&a.to_le_bytes());
        self.buf.extend_from_slice(&b.to_le_bytes());
        self
    }

    /// Zero-terminated UTF-8, zero-padded to a word.
    pub(crate) fn text(&mut self, s: &str) -> &mut Self {
        self.buf.extend_from_slice(s.as_bytes());
        self.buf.push(0);
        self.pad();
        self
    }

    fn pad(&mut self) {
        while !self.buf.len().is_multiple_of(8) {
            self.buf.push(0);
        }
    }

    /// A tuple of parameters: a count byte and a type byte each, padded, then the values.
    /// Nothing at all for no parameters (as go-dqlite sends it).
    pub(crate) fn params<'a>(
        &mut self,
        values: impl ExactSizeIterator<Item = ValueRef<'a>> + Clone,
    ) -> Result<&mut Self, String> {
        let n = values.len();
        if n == 0 {
            return Ok(self);
        }
        let n = u8::try_from(n).map_err(|_| format!("{n} parameters: dqlite takes at most 255"))?;
        self.buf.push(n);
        for v in values.clone() {
            self.buf.push(match v {
                ValueRef::Null => types::NULL,
                ValueRef::Integer(_) => types::INTEGER,
                ValueRef::Real(_) => types::FLOAT,
                ValueRef::Text(_) => types::TEXT,
                ValueRef::Blob(_) => types::BLOB,
            });
        }
        self.pad();
        for v in values {
            match v {
                ValueRef::Null => {
                    self.u64(0);
                }
                ValueRef::Integer(i) => {
                    self.buf.extend_from_slice(&i.to_le_bytes());
                }
                ValueRef::Real(f) => {
                    self.buf.extend_from_slice(&f.to_bits().to_le_bytes());
                }
                ValueRef::Text(t) => {
                    if t.contains(&0) {
                        return Err("a text parameter holds a NUL byte, which dqlite's text cannot carry".into());
                    }
                    self.buf.extend_from_slice(t);
                    self.buf.push(0);
                    self.pad();
                }
                ValueRef::Blob(b) => {
                    self.u64(b.len() as u64);
                    self.buf.extend_from_slice(b);
                    self.pad();
                }
            }
        }
        Ok(self)
    }

    /// The finished message: the body length written into the header.
    pub(crate) fn finish(&mut self) -> &[u8] {
        let words = ((self.buf.len() - 8) / 8) as u32;
        self.buf[..4].copy_from_slice(&words.to_le_bytes());
        &self.buf
    }
}

/// A header word: the body's length in bytes and the message type.
pub(crate) fn header(word: [u8; 8]) -> (usize, u8) {
    let words = u32::from_le_bytes([word[0], word[1], word[2], word[3]]);
    (words as usize * 8, word[4])
}

/// Reads the fields of a received body in order.
pub(crate) struct Decoder<'a> {
    body: &'a [u8],
    at: usize,
}

impl<'a> Decoder<'a> {
    pub(crate) fn new(body: &'a [u8]) -> Self {
        Self { body, at: 0 }
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], Malformed> {
        let end = self.at.checked_add(n).filter(|&e| e <= self.body.len());
        let end = end.ok_or_else(|| Malformed(format!("{n} bytes wanted at {} of {}", self.at, self.body.len())))?;
        let s = &self.body[self.at..end];
        self.at = end;
        Ok(s)
    }

    pub(crate) fn u64(&mut self) -> Result<u64, Malformed> {
        let b = self.take(8)?;
        Ok(u64::from_le_bytes(b.try_into().expect("8 bytes")))
    }

    pub(crate) fn i64(&mut self) -> Result<i64, Malformed> {
        self.u64().map(|v| v as i64)
    }

    pub(crate) fn u32(&mut self) -> Result<u32, Malformed> {
        let b = self.take(4)?;
        Ok(u32::from_le_bytes(b.try_into().expect("4 bytes")))
    }

    /// Zero-terminated text padded to a word.
    pub(crate) fn text(&mut self) -> Result<&'a str, Malformed> {
        let rest = &self.body[self.at..];
        let len = rest
            .iter()
            .position(|&b| b == 0)
            .ok_or_else(|| Malformed("text without its terminating zero".into()))?;
        let s = std::str::from_utf8(&rest[..len]).map_err(|e| Malformed(format!("text is not UTF-8: {e}")))?;
        self.take((len + 1).div_ceil(8) * 8)?;
        Ok(s)
    }

    fn blob(&mut self) -> Result<&'a [u8], Malformed> {
        let len = self.u64()? as usize;
        let padded = len.div_ceil(8) * 8;
        let b = self.take(padded)?;
        Ok(&b[..len])
    }

    #[cfg(test)]
    pub(crate) fn is_empty(&self) -> bool {
        self.at >= self.body.len()
    }

    /// The failure response: SQLite's (extended) error code and message.
    pub(crate) fn failure(&mut self) -> Result<(u64, String), Malformed> {
        Ok((self.u64()?, self.text()?.to_string()))
    }

    /// A node-info list (`Cluster` format 1: id, address, role).
    pub(crate) fn nodes(&mut self) -> Result<Vec<(u64, String, u64)>, Malformed> {
        let n = self.u64()?;
        (0..n)
            .map(|_| Ok((self.u64()?, self.text()?.to_string(), self.u64()?)))
            .collect()
    }

    /// The start of a batch of rows: the column count and names.
    pub(crate) fn columns(&mut self) -> Result<usize, Malformed> {
        let n = self.u64()? as usize;
        for _ in 0..n {
            self.text()?;
        }
        Ok(n)
    }

    /// The next row of a batch into `row` (resized to `columns`): `Ok(None)` at the end of
    /// the batch, with whether more batches follow.
    pub(crate) fn row(
        &mut self,
        columns: usize,
        mut each: impl FnMut(usize, ValueRef<'_>),
    ) -> Result<Option<bool>, Malformed> {
        let header_words = (columns * 4).div_ceil(64).max(1);
        let first = *self
            .body
            .get(self.at)
            .ok_or_else(|| Malformed("rows without an end marker".into()))?;
        if first == ROWS_DONE || first == ROWS_PART {
            self.take(8)?;
            return Ok(Some(first == ROWS_PART));
        }
        let header = self.take(header_words * 8)?;
        for col in 0..columns {
            let byte = header[col / 2];
            let code = if col % 2 == 0 { byte & 0x0f } else { byte >> 4 };
            let value = match code {
                types::INTEGER | types::UNIXTIME | types::BOOLEAN => ValueRef::Integer(self.i64()?),
                types::FLOAT => ValueRef::Real(f64::from_bits(self.u64()?)),
                types::TEXT | types::ISO8601 => ValueRef::Text(self.text()?.as_bytes()),
                types::BLOB => ValueRef::Blob(self.blob()?),
                types::NULL => {
                    self.u64()?;
                    ValueRef::Null
                }
                other => return Err(Malformed(format!("unknown value type {other} in column {col}"))),
            };
            each(col, value);
        }
        Ok(None)
    }
}

/// A row value as an owned value.
pub(crate) fn owned(v: ValueRef<'_>) -> Value {
    match v {
        ValueRef::Null => Value::Null,
        ValueRef::Integer(i) => Value::Integer(i),
        ValueRef::Real(f) => Value::Real(f),
        ValueRef::Text(t) => Value::Text(String::from_utf8_lossy(t).into_owned()),
        ValueRef::Blob(b) => Value::Blob(b.to_vec()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_are_word_aligned_with_their_length_in_the_header() {
        let mut e = Encoder::default();
        let msg = e.start(request::PREPARE).u64(7).text("SELECT 1").finish().to_vec();
        // header + db id + "SELECT 1\0" padded to 16 bytes
        assert_eq!(msg.len(), 8 + 8 + 16);
        assert_eq!(header(msg[..8].try_into().unwrap()), (24, request::PREPARE));
        assert_eq!(&msg[16..25], b"SELECT 1\0");
    }

    #[test]
    fn parameters_carry_their_types_then_their_values() {
        let mut e = Encoder::default();
        let vals = [
            ValueRef::Integer(-2),
            ValueRef::Text(b"hi"),
            ValueRef::Null,
            ValueRef::Blob(&[1, 2, 3]),
            ValueRef::Real(1.5),
        ];
        let msg = e
            .start(request::EXEC)
            .u32_pair(1, 2)
            .params(vals.iter().copied())
            .unwrap()
            .finish()
            .to_vec();
        let body = &msg[8..];
        assert_eq!(&body[8..14], &[5, 1, 3, 5, 4, 2]);
        assert_eq!(i64::from_le_bytes(body[16..24].try_into().unwrap()), -2);
        assert_eq!(&body[24..27], b"hi\0");
        assert_eq!(u64::from_le_bytes(body[40..48].try_into().unwrap()), 3);
        assert_eq!(f64::from_le_bytes(body[56..64].try_into().unwrap()), 1.5);
        assert_eq!(body.len(), 64);
        let none = e
            .start(request::EXEC)
            .u32_pair(1, 2)
            .params(std::iter::empty())
            .unwrap()
            .finish()
            .len();
        assert_eq!(none, 16);
        let nul = [ValueRef::Text(b"a\0b")];
        assert!(e.start(request::EXEC).params(nul.iter().copied()).is_err());
    }

    /// A batch of rows as dqlite writes it: columns, per row a 4-bit type header, the end.
    #[test]
    fn rows_decode_with_nibble_headers_and_end_markers() {
        let mut b = Vec::new();
        b.extend_from_slice(&3u64.to_le_bytes());
        for name in [&b"a\0\0\0\0\0\0\0"[..], b"b\0\0\0\0\0\0\0", b"c\0\0\0\0\0\0\0"] {
            b.extend_from_slice(name);
        }
        // row 1: integer, text, null  -> nibbles 1,3 | 5
        b.extend_from_slice(&[0x31, 0x05, 0, 0, 0, 0, 0, 0]);
        b.extend_from_slice(&42i64.to_le_bytes());
        b.extend_from_slice(b"xyz\0\0\0\0\0");
        b.extend_from_slice(&0u64.to_le_bytes());
        b.extend_from_slice(&[ROWS_DONE; 8]);
        let mut d = Decoder::new(&b);
        assert_eq!(d.columns().unwrap(), 3);
        let mut got = vec![Value::Null; 3];
        assert_eq!(d.row(3, |i, v| got[i] = owned(v)).unwrap(), None);
        assert_eq!(got, vec![Value::Integer(42), Value::Text("xyz".into()), Value::Null]);
        assert_eq!(d.row(3, |_, _| {}).unwrap(), Some(false));
        assert!(d.is_empty());
        let mut truncated = Decoder::new(&b[..44]);
        truncated.columns().unwrap();
        assert!(truncated.row(3, |_, _| {}).is_err());
    }
}
