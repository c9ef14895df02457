//! The `multipart/form-data` reader of body screening (`screening::multipart`): never panics,
//! every part it returns lies inside the body, in order, without the delimiter in it, and a
//! body written back from the parts it read (names and file names quoted and escaped) reads
//! back to the same parts. Screening such a body never panics either.
#![no_main]

use api_guard::screening::multipart::{boundary, parse, Part, MAX_PARTS};
use api_guard::screening::{ScreenedBody, ScreeningRule};
use libfuzzer_sys::fuzz_target;

const BOUNDARY: &[u8] = b"b0";

fn quoted(out: &mut Vec<u8>, v: &[u8]) {
    out.push(b'"');
    for &b in v {
        if b == b'"' || b == b'\\' {
            out.push(b'\\');
        }
        out.push(b);
    }
    out.push(b'"');
}

fn write(parts: &[Part<'_>]) -> Vec<u8> {
    let mut out = Vec::new();
    for p in parts {
        out.extend_from_slice(b"--b0\r\nContent-Disposition: form-data; name=");
        quoted(&mut out, &p.name);
        if let Some(f) = &p.filename {
            out.extend_from_slice(b"; filename=");
            quoted(&mut out, f);
        }
        out.extend_from_slice(b"\r\n\r\n");
        out.extend_from_slice(p.content);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"--b0--\r\n");
    out
}

type Flat = Vec<(Vec<u8>, Option<Vec<u8>>, Vec<u8>)>;

fn flat(parts: &[Part<'_>]) -> Flat {
    parts
        .iter()
        .map(|p| {
            (
                p.name.to_vec(),
                p.filename.as_ref().map(|f| f.to_vec()),
                p.content.to_vec(),
            )
        })
        .collect()
}

fuzz_target!(|data: &[u8]| {
    let _ = boundary(data);
    let Ok(parts) = parse(data, BOUNDARY) else {
        return;
    };
    assert!(parts.len() <= MAX_PARTS);
    let base = data.as_ptr() as usize;
    let mut last_end = 0;
    for p in &parts {
        let start = p.content.as_ptr() as usize - base;
        assert!(start >= last_end && start + p.content.len() <= data.len());
        last_end = start + p.content.len();
        assert!(!p.content.windows(6).any(|w| w == b"\r\n--b0"));
    }
    // Names with a lone quote-breaking byte sequence cannot be written back as one header
    // line; everything the reader returns came from one, so they can.
    let again = write(&parts);
    let reread = parse(&again, BOUNDARY).expect("a body written from read parts reads back");
    assert_eq!(flat(&reread), flat(&parts));
    let rule = ScreeningRule::default();
    let kind = ScreenedBody::Multipart {
        boundary: BOUNDARY.to_vec(),
    };
    let _ = rule.screen_body_of(&kind, data);
});
