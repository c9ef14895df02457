//! Just enough of the WebAssembly binary format to rewrite the export section: a module is a
//! header followed by sections `id:u8, size:u32 (LEB128), body`; the export section (id 7) is a
//! vector of `name, kind:u8, index:u32`.

const MAGIC: &[u8; 8] = b"\0asm\x01\0\0\0";
const EXPORT_SECTION: u8 = 7;

pub struct Trimmed {
    pub bytes: Vec<u8>,
    pub removed: Vec<String>,
}

fn read_u32(bytes: &[u8], at: &mut usize) -> Result<u32, String> {
    let mut value: u64 = 0;
    for shift in (0..35).step_by(7) {
        let byte = *bytes.get(*at).ok_or("truncated LEB128")?;
        *at += 1;
        value |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return u32::try_from(value).map_err(|_| "LEB128 value over u32".to_string());
        }
    }
    Err("LEB128 longer than 5 bytes".into())
}

fn write_u32(out: &mut Vec<u8>, mut value: u32) {
    loop {
        let byte = (value & 0x7f) as u8;
        value >>= 7;
        if value == 0 {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}

struct Export<'a> {
    name: String,
    /// kind byte and LEB128 index, copied verbatim.
    rest: &'a [u8],
}

fn parse_exports(body: &[u8]) -> Result<Vec<Export<'_>>, String> {
    let mut at = 0;
    let count = read_u32(body, &mut at)?;
    let mut exports = Vec::new();
    for _ in 0..count {
        let len = read_u32(body, &mut at)? as usize;
        let name = body.get(at..at + len).ok_or("truncated export name")?;
        let name = String::from_utf8(name.to_vec()).map_err(|_| "export name is not UTF-8")?;
        at += len;
        let start = at;
        at += 1; // kind
        read_u32(body, &mut at)?;
        exports.push(Export {
            name,
            rest: body.get(start..at).ok_or("truncated export")?,
        });
    }
    if at != body.len() {
        return Err("trailing bytes in the export section".into());
    }
    Ok(exports)
}

/// Sections as (id, body).
fn sections(bytes: &[u8]) -> Result<Vec<(u8, &[u8])>, String> {
    if bytes.get(..8) != Some(MAGIC.as_slice()) {
        return Err("not a WebAssembly 1.0 module".into());
    }
    let mut at = 8;
    let mut out = Vec::new();
    while at < bytes.len() {
        let id = bytes[at];
        at += 1;
        let size = read_u32(bytes, &mut at)? as usize;
        let body = bytes.get(at..at + size).ok_or("truncated section")?;
        at += size;
        out.push((id, body));
    }
    Ok(out)
}

pub fn export_names(bytes: &[u8]) -> Result<Vec<String>, String> {
    let mut names = Vec::new();
    for (id, body) in sections(bytes)? {
        if id == EXPORT_SECTION {
            names.extend(parse_exports(body)?.into_iter().map(|e| e.name));
        }
    }
    Ok(names)
}

pub fn drop_exports(bytes: &[u8], drop: &[String]) -> Result<Trimmed, String> {
    let mut out = MAGIC.to_vec();
    let mut removed = Vec::new();
    for (id, body) in sections(bytes)? {
        let body = if id == EXPORT_SECTION {
            let exports = parse_exports(body)?;
            let (gone, kept): (Vec<_>, Vec<_>) =
                exports.into_iter().partition(|e| drop.contains(&e.name));
            removed.extend(gone.into_iter().map(|e| e.name));
            let mut section = Vec::new();
            write_u32(&mut section, kept.len() as u32);
            for e in kept {
                write_u32(&mut section, e.name.len() as u32);
                section.extend_from_slice(e.name.as_bytes());
                section.extend_from_slice(e.rest);
            }
            section
        } else {
            body.to_vec()
        };
        out.push(id);
        write_u32(&mut out, body.len() as u32);
        out.extend_from_slice(&body);
    }
    Ok(Trimmed {
        bytes: out,
        removed,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A module with a type, a function, and exports `keep`, `drop_me` and a 200-byte name (to
    /// exercise multi-byte LEB128 lengths).
    fn module() -> Vec<u8> {
        let long = "x".repeat(200);
        let mut exports = Vec::new();
        write_u32(&mut exports, 3);
        for name in ["keep", "drop_me", long.as_str()] {
            write_u32(&mut exports, name.len() as u32);
            exports.extend_from_slice(name.as_bytes());
            exports.extend_from_slice(&[0x00, 0x00]); // function 0
        }
        let mut m = MAGIC.to_vec();
        m.extend_from_slice(&[1, 4, 1, 0x60, 0, 0]); // type section: () -> ()
        m.extend_from_slice(&[3, 2, 1, 0]); // function section: one function of type 0
        m.push(EXPORT_SECTION);
        write_u32(&mut m, exports.len() as u32);
        m.extend_from_slice(&exports);
        m.extend_from_slice(&[10, 4, 1, 2, 0, 0x0b]); // code section: empty body
        m
    }

    #[test]
    fn drops_only_named_exports_and_keeps_other_sections() {
        let m = module();
        let t = drop_exports(&m, &["drop_me".to_string(), "absent".to_string()]).unwrap();
        assert_eq!(t.removed, vec!["drop_me"]);
        let names = export_names(&t.bytes).unwrap();
        assert_eq!(names, vec!["keep".to_string(), "x".repeat(200)]);
        // Every non-export section is byte-identical.
        let before: Vec<_> = sections(&m)
            .unwrap()
            .into_iter()
            .filter(|(id, _)| *id != EXPORT_SECTION)
            .collect();
        let after: Vec<_> = sections(&t.bytes)
            .unwrap()
            .into_iter()
            .filter(|(id, _)| *id != EXPORT_SECTION)
            .collect();
        assert_eq!(before, after);
    }

    #[test]
    fn dropping_nothing_is_the_identity() {
        let m = module();
        assert_eq!(drop_exports(&m, &[]).unwrap().bytes, m);
    }

    #[test]
    fn rejects_malformed_modules() {
        assert!(sections(b"not wasm").is_err());
        let m = module();
        // Section boundaries of the test module: header, then 6-, 4-, export- and 6-byte sections.
        let export_end = m.len() - 6;
        let boundaries = [8, 14, 18, export_end, m.len()];
        for cut in 9..m.len() {
            let result = drop_exports(&m[..cut], &[]);
            assert_eq!(result.is_ok(), boundaries.contains(&cut), "cut at {cut}");
        }
        assert!(read_u32(&[0xff, 0xff, 0xff, 0xff, 0xff, 0x01], &mut 0).is_err());
    }

    #[test]
    fn leb128_round_trips() {
        for v in [0u32, 1, 127, 128, 300, 16_384, u32::MAX] {
            let mut buf = Vec::new();
            write_u32(&mut buf, v);
            assert_eq!(read_u32(&buf, &mut 0).unwrap(), v);
        }
    }
}
