//! A lenient PEM reader and a plain PEM writer for key and certificate files.
//!
//! Files handed out by providers and made on Windows come with CRLF line ends,
//! odd line lengths, header lines and text around the block; strict RFC 7468
//! parsers refuse some of them. This reader only looks for the BEGIN/END
//! markers and decodes the Base64 in between, skipping whitespace and
//! `Key: value` header lines.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

/// One PEM block: its label (`PRIVATE KEY`, `CERTIFICATE`, ...) and its DER bytes.
pub struct Block {
    pub label: String,
    pub der: Vec<u8>,
}

/// Whether `bytes` looks like PEM text rather than DER.
pub fn is_pem(bytes: &[u8]) -> bool {
    bytes.windows(11).any(|w| w == b"-----BEGIN ")
}

/// Every PEM block in `text`, in order. A block whose Base64 does not decode
/// is an error naming its label.
pub fn decode_all(text: &str) -> Result<Vec<Block>, String> {
    let mut blocks = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find("-----BEGIN ") {
        let after = &rest[start + 11..];
        let label_end = after
            .find("-----")
            .ok_or_else(|| "unterminated PEM BEGIN line".to_owned())?;
        let label = after[..label_end].trim().to_owned();
        let body_and_rest = &after[label_end + 5..];
        let end_marker = format!("-----END {label}-----");
        let end = body_and_rest
            .find(&end_marker)
            .ok_or_else(|| format!("PEM block {label:?} has no END line"))?;
        let body: String = body_and_rest[..end]
            .lines()
            .filter(|line| !line.contains(':'))
            .flat_map(|line| line.chars())
            .filter(|c| !c.is_ascii_whitespace())
            .collect();
        let der = STANDARD
            .decode(body.as_bytes())
            .map_err(|e| format!("PEM block {label:?} is not valid Base64: {e}"))?;
        blocks.push(Block { label, der });
        rest = &body_and_rest[end + end_marker.len()..];
    }
    Ok(blocks)
}

/// PEM text with 64-column lines.
pub fn encode(label: &str, der: &[u8]) -> String {
    let b64 = STANDARD.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for line in b64.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(line).unwrap_or_default());
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_tolerates_crlf_headers_and_text_around() {
        let der: Vec<u8> = (0u8..=200).collect();
        let pem = encode("CERTIFICATE", &der).replace('\n', "\r\n");
        let text = format!("Bag Attributes\r\n    friendlyName: x\r\n{pem}trailing words\n");
        let blocks = decode_all(&text).unwrap();
        assert_eq!(blocks.len(), 1);
        assert_eq!(blocks[0].label, "CERTIFICATE");
        assert_eq!(blocks[0].der, der);
        assert!(is_pem(text.as_bytes()));
    }

    #[test]
    fn missing_end_is_an_error() {
        let err = decode_all("-----BEGIN PUBLIC KEY-----\nAAAA\n").err().unwrap();
        assert!(err.contains("no END line"), "{err}");
    }

    #[test]
    fn bad_base64_is_an_error() {
        let err = decode_all("-----BEGIN PUBLIC KEY-----\n!!!!\n-----END PUBLIC KEY-----\n")
            .err()
            .unwrap();
        assert!(err.contains("not valid Base64"), "{err}");
    }
}
