use super::*;
use proptest::prelude::*;

const B: &[u8] = b"XyZ123";

fn body(parts: &[&str]) -> Vec<u8> {
    let mut out = Vec::new();
    for p in parts {
        out.extend_from_slice(b"--XyZ123\r\n");
        out.extend_from_slice(p.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"--XyZ123--\r\n");
    out
}

/// (name, filename, content) of each part, as strings.
type Flat = Vec<(String, Option<String>, String)>;

fn flat(parts: &[Part<'_>]) -> Flat {
    let s = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    parts
        .iter()
        .map(|p| (s(&p.name), p.filename.as_deref().map(s), s(p.content)))
        .collect()
}

fn field(name: &str, content: &str) -> (String, Option<String>, String) {
    (name.into(), None, content.into())
}

#[test]
fn boundary_from_the_content_type() {
    let cases: [(&[u8], Option<&[u8]>); 10] = [
        (b"multipart/form-data; boundary=XyZ123", Some(b"XyZ123")),
        (b"multipart/form-data;boundary=\"a b:c\"", Some(b"a b:c")),
        (b"multipart/form-data; charset=utf-8; BOUNDARY=x", Some(b"x")),
        (
            b"multipart/form-data; boundary=----WebKitFormBoundary7MA4YWxkTrZu0gW",
            Some(b"----WebKitFormBoundary7MA4YWxkTrZu0gW"),
        ),
        (b"multipart/form-data", None),
        (b"multipart/form-data; boundary=", None),
        (b"multipart/form-data; boundary=a; boundary=b", None),
        (b"multipart/form-data; boundary=\"ends with space \"", None),
        (b"multipart/form-data; boundary=semi\"quote", None),
        (
            b"multipart/form-data; boundary=0123456789012345678901234567890123456789012345678901234567890123456789x",
            None,
        ),
    ];
    for (ct, want) in cases {
        assert_eq!(boundary(ct), want, "{}", String::from_utf8_lossy(ct));
    }
}

#[test]
fn well_formed_bodies() {
    let cases: Vec<(Vec<u8>, Flat)> = vec![
        (
            body(&["Content-Disposition: form-data; name=\"a\"\r\n\r\n1"]),
            vec![field("a", "1")],
        ),
        (
            body(&[
                "content-disposition: FORM-DATA; name=b\r\n\r\nline 1\r\nline 2",
                "Content-Disposition: form-data; name=\"f\"; filename=\"x.png\"\r\nContent-Type: image/png\r\n\r\n\u{1}PNG",
                "Content-Disposition: form-data; name=\"empty\"\r\n\r\n",
            ]),
            vec![
                field("b", "line 1\r\nline 2"),
                ("f".into(), Some("x.png".into()), "\u{1}PNG".into()),
                field("empty", ""),
            ],
        ),
        // Quoted-pair escapes are undone; unknown parameters ignored; filename* kept raw.
        (
            body(&[
                "Content-Disposition: form-data; name=\"q\\\"x\"; size=3; filename*=UTF-8''%E2%82%AC.txt\r\n\r\nv",
            ]),
            vec![(
                "q\"x".into(),
                Some("UTF-8''%E2%82%AC.txt".into()),
                "v".into(),
            )],
        ),
        // Transport padding after a delimiter, whitespace before and after the body.
        (
            b"\r\n--XyZ123 \t\r\nContent-Disposition: form-data; name=a\r\n\r\n1\r\n--XyZ123--\r\n\r\n"
                .to_vec(),
            vec![field("a", "1")],
        ),
        // Content that merely contains the boundary text (not after CRLF).
        (
            body(&["Content-Disposition: form-data; name=a\r\n\r\nx--XyZ123 y"]),
            vec![field("a", "x--XyZ123 y")],
        ),
        (b"--XyZ123--".to_vec(), vec![]),
    ];
    for (b, want) in cases {
        let got = parse(&b, B).map(|p| flat(&p));
        assert_eq!(got, Ok(want), "{}", String::from_utf8_lossy(&b));
    }
}

#[test]
fn malformed_bodies_are_refused() {
    let d = "Content-Disposition: form-data; name=a\r\n\r\n1";
    let mut cases: Vec<(&str, Vec<u8>)> = vec![
        ("empty", b"".to_vec()),
        ("no close delimiter", b"--XyZ123\r\nContent-Disposition: form-data; name=a\r\n\r\n1".to_vec()),
        ("preamble", [b"hello\r\n".as_slice(), &body(&[d])].concat()),
        ("epilogue", [body(&[d]).as_slice(), b"more"].concat()),
        ("other boundary", body(&[d]).iter().map(|&b| if b == b'Z' { b'Q' } else { b }).collect()),
        ("LF only", body(&[d]).into_iter().filter(|&b| b != b'\r').collect()),
        ("no disposition", body(&["Content-Type: text/plain\r\n\r\n1"])),
        ("no name", body(&["Content-Disposition: form-data; filename=x\r\n\r\n1"])),
        ("not form-data", body(&["Content-Disposition: attachment; name=a\r\n\r\n1"])),
        (
            "two dispositions",
            body(&["Content-Disposition: form-data; name=a\r\nContent-Disposition: form-data; name=b\r\n\r\n1"]),
        ),
        ("repeated name", body(&["Content-Disposition: form-data; name=a; name=b\r\n\r\n1"])),
        (
            "repeated filename",
            body(&["Content-Disposition: form-data; name=a; filename=x; filename*=y\r\n\r\n1"]),
        ),
        ("folded header", body(&["Content-Disposition: form-data;\r\n name=a\r\n\r\n1"])),
        ("header without colon", body(&["Content-Disposition form-data; name=a\r\n\r\n1"])),
        ("unterminated quote", body(&["Content-Disposition: form-data; name=\"a\r\n\r\n1"])),
        ("trailing garbage", body(&["Content-Disposition: form-data; name=\"a\"x\r\n\r\n1"])),
        (
            "base64",
            body(&["Content-Disposition: form-data; name=a\r\nContent-Transfer-Encoding: base64\r\n\r\nMQ=="]),
        ),
        (
            "nested multipart",
            body(&["Content-Disposition: form-data; name=a\r\nContent-Type: multipart/mixed; boundary=q\r\n\r\n"]),
        ),
        (
            "delimiter that goes on",
            body(&["Content-Disposition: form-data; name=a\r\n\r\n1\r\n--XyZ123X\r\nmore"]),
        ),
        ("headers never end", b"--XyZ123\r\nContent-Disposition: form-data; name=a\r\n".to_vec()),
    ];
    let many: Vec<String> = (0..17).map(|i| format!("X-H{i}: v")).collect();
    cases.push((
        "17 header lines",
        body(&[&format!("{}\r\n{d}", many.join("\r\n"))]),
    ));
    let parts: Vec<&str> = vec![d; MAX_PARTS + 1];
    cases.push(("too many parts", body(&parts)));
    for (why, b) in cases {
        assert_eq!(parse(&b, B), Err(Malformed), "{why}");
    }
    let parts: Vec<&str> = vec![d; MAX_PARTS];
    assert_eq!(parse(&body(&parts), B).map(|p| p.len()), Ok(MAX_PARTS));
}

fn text() -> impl Strategy<Value = String> {
    // Contents that stress the delimiter search: CR, LF, dashes and pieces of the boundary.
    proptest::collection::vec(
        prop_oneof![
            Just("\r".to_string()),
            Just("\n".to_string()),
            Just("--".to_string()),
            Just("XyZ".to_string()),
            Just("\"".to_string()),
            "[a-z0-9 ;=]{0,6}",
        ],
        0..8,
    )
    .prop_map(|v| v.concat())
}

proptest! {
    // Whatever the contents, a body built from parts is read back part for part, unless a
    // content holds the delimiter itself (then it must be refused or read differently, never
    // crash), and names without quotes or backslashes come back as written.
    #[test]
    fn built_bodies_read_back(
        fields in proptest::collection::vec(("[a-z_]{1,8}", proptest::option::of("[a-z.]{1,8}"), text()), 0..6)
    ) {
        let rendered: Vec<String> = fields
            .iter()
            .map(|(name, file, content)| {
                let file = file.as_ref().map(|f| format!("; filename=\"{f}\"")).unwrap_or_default();
                format!("Content-Disposition: form-data; name=\"{name}\"{file}\r\n\r\n{content}")
            })
            .collect();
        let refs: Vec<&str> = rendered.iter().map(String::as_str).collect();
        let b = body(&refs);
        let holds_delimiter = fields.iter().any(|(_, _, c)| format!("{c}\r\n").contains("\r\n--XyZ123"));
        match parse(&b, B) {
            Ok(parts) => {
                let want: Flat = fields.clone();
                if !holds_delimiter {
                    prop_assert_eq!(flat(&parts), want);
                }
            }
            Err(Malformed) => prop_assert!(holds_delimiter, "{:?}", String::from_utf8_lossy(&b)),
        }
    }

    #[test]
    fn arbitrary_bytes_never_panic(b in proptest::collection::vec(any::<u8>(), 0..200)) {
        let _ = parse(&b, B);
        let _ = boundary(&b);
    }
}

#[test]
fn bodies_written_by_real_clients() {
    // Captured on the wire: curl 7.88.1 `-F "title=O'Brien" -F "photo=@f.bin;type=image/jpeg"`
    // and Python requests 2.34.2 `data={...}, files={"photo": (...)}`.
    let cases: [(&[u8], &[u8], Flat); 2] = [
        (
            include_bytes!("fixtures/curl.bin"),
            b"multipart/form-data; boundary=------------------------c2c1fdaad8f6569e",
            vec![
                field("title", "O'Brien"),
                ("photo".into(), Some("f.bin".into()), "binary\r\n--".into()),
            ],
        ),
        (
            include_bytes!("fixtures/python-requests.bin"),
            b"multipart/form-data; boundary=ede49f31a1c142af211e0e71563e3665",
            vec![
                field("title", "O'Brien"),
                field("n", "1"),
                (
                    "photo".into(),
                    Some("beach.jpg".into()),
                    String::from_utf8_lossy(b"\xff\xd8binary\r\n--x").into_owned(),
                ),
            ],
        ),
    ];
    for (body, content_type, want) in cases {
        let b = boundary(content_type).unwrap();
        assert_eq!(parse(body, b).map(|p| flat(&p)), Ok(want));
    }
}
