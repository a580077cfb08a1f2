//! The HDR histogram as litehammer records and stores it: nanoseconds, 3 significant digits,
//! serialized as base64 of HdrHistogram's compressed V2 encoding.

use base64::Engine;
use hdrhistogram::Histogram;
use hdrhistogram::serialization::{Deserializer, Serializer, V2DeflateSerializer};

/// Nanosecond histogram, 3 significant digits, growing as larger values arrive.
pub(crate) fn new_histogram() -> Histogram<u64> {
    Histogram::new(3).expect("3 significant digits is valid")
}

/// Base64 of the compressed V2 encoding (the format of HdrHistogram interval logs).
pub(crate) fn encode_histogram(h: &Histogram<u64>) -> String {
    let mut bytes = Vec::new();
    V2DeflateSerializer::new()
        .serialize(h, &mut bytes)
        .expect("serializing to memory");
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

pub fn decode_histogram(text: &str) -> Result<Histogram<u64>, String> {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(text)
        .map_err(|e| e.to_string())?;
    Deserializer::new()
        .deserialize(&mut bytes.as_slice())
        .map_err(|e| format!("{e:?}"))
}

/// `#[serde(with = "crate::metrics::histogram::serde_v2")]`: a histogram field as
/// `encode_histogram` text (the one codec of reports and process workers' frames).
pub(crate) mod serde_v2 {
    use hdrhistogram::Histogram;
    use serde::{Deserialize, Deserializer, Serializer};

    pub(crate) fn serialize<S: Serializer>(h: &Histogram<u64>, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&crate::metrics::histogram::encode_histogram(h))
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Histogram<u64>, D::Error> {
        let text = String::deserialize(d)?;
        crate::metrics::histogram::decode_histogram(&text).map_err(serde::de::Error::custom)
    }

    /// The same for `Option<Histogram<u64>>` (`None` is `null`).
    pub(crate) mod option {
        use hdrhistogram::Histogram;
        use serde::{Deserialize, Deserializer, Serialize, Serializer};

        struct V2<'a>(&'a Histogram<u64>);

        impl Serialize for V2<'_> {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                crate::metrics::histogram::serde_v2::serialize(self.0, s)
            }
        }

        pub(crate) fn serialize<S: Serializer>(h: &Option<Histogram<u64>>, s: S) -> Result<S::Ok, S::Error> {
            h.as_ref().map(V2).serialize(s)
        }

        pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Histogram<u64>>, D::Error> {
            Option::<String>::deserialize(d)?
                .map(|text| crate::metrics::histogram::decode_histogram(&text).map_err(serde::de::Error::custom))
                .transpose()
        }
    }
}
