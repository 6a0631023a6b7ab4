//! Framing, parsing and normalisation of upload-pack requests, including
//! malformed input that must be refused without a panic.

use super::*;

const A: &str = "1111111111111111111111111111111111111111";
const B: &str = "2222222222222222222222222222222222222222";
const C: &str = "3333333333333333333333333333333333333333";
/// Upper-case hex: not an object id on the wire.
const UPPER: &str = "ABCDEF0123456789ABCDEF0123456789ABCDEF01";

/// One data pkt-line holding `s` plus a newline.
fn pkt(s: &str) -> Vec<u8> {
    let mut v = format!("{:04x}", s.len() + 5).into_bytes();
    v.extend_from_slice(s.as_bytes());
    v.push(b'\n');
    v
}

/// A body from text lines, with `|` for a delimiter and `.` for a flush.
fn body(lines: &[&str]) -> Vec<u8> {
    let mut out = Vec::new();
    for l in lines {
        match *l {
            "|" => out.extend_from_slice(b"0001"),
            "." => out.extend_from_slice(b"0000"),
            l => out.extend_from_slice(&pkt(l)),
        }
    }
    out
}

fn canonical(lines: &[&str]) -> Cacheability {
    classify(&parse_request(&body(lines)).expect("parses"))
}

fn pack_text(c: Cacheability) -> String {
    match c {
        Cacheability::Pack { canonical } => canonical,
        other => panic!("expected a pack, got {other:?}"),
    }
}

fn bypass_reason(c: Cacheability) -> String {
    match c {
        Cacheability::Bypass { reason } => reason,
        other => panic!("expected bypass, got {other:?}"),
    }
}

#[test]
fn framing() {
    let p = packets(b"00000001000200040009want\n").unwrap();
    assert_eq!(
        p,
        [
            Packet::Flush,
            Packet::Delim,
            Packet::ResponseEnd,
            Packet::Data(b""),
            Packet::Data(b"want\n"),
        ]
    );
    assert_eq!(p[4].text(), Some("want"));
    assert_eq!(p[3].text(), Some(""));
    assert_eq!(p[0].text(), None);
    assert_eq!(packets(b"").unwrap(), []);
    // Upper-case hex is accepted, as git does.
    assert_eq!(packets(b"000Aabcdef").unwrap(), [Packet::Data(b"abcdef")]);
    assert_eq!(Packet::Data(&[0xff, 0xfe]).text(), None);
}

#[test]
fn malformed_framing() {
    assert_eq!(packets(b"00"), Err(PktError::Truncated { offset: 0 }));
    assert_eq!(packets(b"0000zz"), Err(PktError::Truncated { offset: 4 }));
    assert_eq!(packets(b"00g0"), Err(PktError::BadLength { offset: 0 }));
    assert_eq!(packets(b"+004abcd"), Err(PktError::BadLength { offset: 0 }));
    assert_eq!(
        packets(b"0003"),
        Err(PktError::InvalidLength { offset: 0, len: 3 })
    );
    assert_eq!(
        packets(b"fff1"),
        Err(PktError::InvalidLength {
            offset: 0,
            len: 0xfff1
        })
    );
    assert_eq!(packets(b"0010abc"), Err(PktError::Truncated { offset: 0 }));
    assert_eq!(
        packets(b"0008abcd0009ab"),
        Err(PktError::Truncated { offset: 8 })
    );
    // The largest packet is fine.
    let mut max = b"fff0".to_vec();
    max.extend(std::iter::repeat_n(b'x', MAX_PKT_LEN - 4));
    assert_eq!(packets(&max).unwrap().len(), 1);
    for e in [
        PktError::BadLength { offset: 1 },
        PktError::InvalidLength { offset: 1, len: 3 },
        PktError::Truncated { offset: 1 },
    ] {
        assert!(!e.to_string().is_empty());
    }
}

#[test]
fn v2_requests() {
    let ls = body(&[
        "command=ls-refs",
        "agent=git/2.47.3",
        "object-format=sha1",
        "|",
        "peel",
        "symrefs",
        "ref-prefix HEAD",
        "ref-prefix refs/heads/",
        ".",
    ]);
    assert_eq!(
        parse_request(&ls).unwrap(),
        UploadRequest::V2 {
            command: "ls-refs".into(),
            capabilities: vec!["agent=git/2.47.3".into(), "object-format=sha1".into()],
            arguments: vec![
                "peel".into(),
                "symrefs".into(),
                "ref-prefix HEAD".into(),
                "ref-prefix refs/heads/".into()
            ],
        }
    );
    // No arguments: capabilities end with the flush.
    assert_eq!(
        parse_request(&body(&["command=ls-refs", "."])).unwrap(),
        UploadRequest::V2 {
            command: "ls-refs".into(),
            capabilities: vec![],
            arguments: vec![],
        }
    );
}

#[test]
fn malformed_v2_requests() {
    let cases: &[(&[&str], RequestError)] = &[
        (
            &["command=fetch", "|", "want x"],
            RequestError::MissingFlush,
        ),
        (&["command=fetch", "agent=x"], RequestError::MissingFlush),
        (&["command=fetch", ".", "done"], RequestError::TrailingData),
        (
            &["command=fetch", "command=ls-refs", "."],
            RequestError::BadLine {
                line: "command=ls-refs".into(),
            },
        ),
        (
            &["command=", "."],
            RequestError::BadLine {
                line: "command=".into(),
            },
        ),
        (
            &["command=fetch", "|", "", "."],
            RequestError::BadLine { line: "".into() },
        ),
        (
            &["command=fetch", "|", "done", "|", "."],
            RequestError::Unexpected { index: 3 },
        ),
    ];
    for (lines, want) in cases {
        assert_eq!(parse_request(&body(lines)).as_ref(), Err(want), "{lines:?}");
    }
    // A payload that is not UTF-8.
    let mut b = body(&["command=fetch", "|"]);
    b.extend_from_slice(b"0007\xff\xfe\xfd0000");
    assert_eq!(
        parse_request(&b),
        Err(RequestError::Unexpected { index: 2 })
    );
    assert_eq!(parse_request(b""), Err(RequestError::Empty));
}

#[test]
fn v0_requests() {
    let want_caps =
        format!("want {A} multi_ack_detailed side-band-64k thin-pack ofs-delta agent=git/2.47.3");
    let r = parse_request(&body(&[
        &want_caps,
        &format!("want {B}"),
        &format!("shallow {C}"),
        "deepen 1",
        "filter blob:none",
        ".",
        "done",
    ]))
    .unwrap();
    let UploadRequest::V0(r) = r else {
        panic!("{r:?}")
    };
    assert_eq!(r.wants, [A, B]);
    assert_eq!(
        r.capabilities,
        [
            "multi_ack_detailed",
            "side-band-64k",
            "thin-pack",
            "ofs-delta",
            "agent=git/2.47.3"
        ]
    );
    assert_eq!(
        r.arguments,
        [
            format!("shallow {C}"),
            "deepen 1".into(),
            "filter blob:none".into()
        ]
    );
    assert!(r.done && r.haves.is_empty());

    // Haves between flushes, without done.
    let r = parse_request(&body(&[
        &format!("want {A}"),
        ".",
        &format!("have {B}"),
        ".",
        &format!("have {C}"),
        ".",
    ]))
    .unwrap();
    let UploadRequest::V0(r) = r else {
        panic!("{r:?}")
    };
    assert_eq!(r.haves, [B, C]);
    assert!(!r.done);

    // Nothing wanted: just a flush.
    assert_eq!(
        parse_request(b"0000").unwrap(),
        UploadRequest::V0(V0Request::default())
    );
}

#[test]
fn malformed_v0_requests() {
    let bad_line = |l: &str| RequestError::BadLine { line: l.into() };
    let cases: Vec<(Vec<String>, RequestError)> = vec![
        (vec![format!("want {A}")], RequestError::MissingFlush),
        (
            vec!["want nothex".into(), ".".into()],
            bad_line("want nothex"),
        ),
        (
            vec![format!("want {}", &A[..39]), ".".into()],
            bad_line(&format!("want {}", &A[..39])),
        ),
        (
            vec![format!("want {UPPER}"), ".".into()],
            bad_line(&format!("want {UPPER}")),
        ),
        (
            vec![
                format!("want {A}"),
                format!("want {B} thin-pack"),
                ".".into(),
            ],
            bad_line(&format!("want {B} thin-pack")),
        ),
        (
            vec![format!("want {A}"), "deepen x".into(), ".".into()],
            bad_line("deepen x"),
        ),
        (
            vec![format!("want {A}"), "shallow 12".into(), ".".into()],
            bad_line("shallow 12"),
        ),
        (
            vec![format!("want {A}"), "filter".into(), ".".into()],
            bad_line("filter"),
        ),
        (
            vec![format!("want {A}"), "frobnicate".into(), ".".into()],
            bad_line("frobnicate"),
        ),
        (
            vec![format!("want {A}"), ".".into(), "done".into(), ".".into()],
            RequestError::TrailingData,
        ),
        (
            vec![format!("want {A}"), ".".into(), "have xyz".into()],
            bad_line("have xyz"),
        ),
        (
            vec![format!("want {A}"), "|".into(), ".".into()],
            RequestError::Unexpected { index: 1 },
        ),
    ];
    for (lines, want) in cases {
        let lines: Vec<&str> = lines.iter().map(String::as_str).collect();
        assert_eq!(parse_request(&body(&lines)), Err(want), "{lines:?}");
    }
    // Long bad lines are shortened in the error.
    let long = format!("x{}", "y".repeat(500));
    match parse_request(&body(&[&long, "."])) {
        Err(RequestError::BadLine { line }) => assert_eq!(line.len(), 64),
        other => panic!("{other:?}"),
    }
    assert!(!RequestError::MissingFlush.to_string().is_empty());
}

#[test]
fn v2_fetch_normalisation() {
    let base = pack_text(canonical(&[
        "command=fetch",
        "agent=git/2.47.3",
        "object-format=sha1",
        "|",
        "thin-pack",
        "ofs-delta",
        &format!("want {B}"),
        &format!("want {A}"),
        &format!("want {A}"),
        "deepen 1",
        "filter blob:none",
        "done",
        ".",
    ]));
    // Order, duplicates, agent and session id do not matter.
    let same = pack_text(canonical(&[
        "command=fetch",
        "object-format=sha1",
        "session-id=abc",
        "agent=git/2.30.0",
        "|",
        "done",
        &format!("want {A}"),
        "filter blob:none",
        "deepen 1",
        &format!("want {B}"),
        "ofs-delta",
        "thin-pack",
        ".",
    ]));
    assert_eq!(base, same);
    assert_eq!(
        base,
        format!(
            "git-upload-pack v2\ncommand=fetch\ncap object-format=sha1\narg deepen 1\narg done\narg filter blob:none\narg ofs-delta\narg thin-pack\narg want {A}\narg want {B}\n"
        )
    );
    // Anything that changes the pack changes the text.
    for extra in [
        "no-progress",
        "include-tag",
        "deepen 2",
        "filter tree:0",
        "sideband-all",
    ] {
        let other = pack_text(canonical(&[
            "command=fetch",
            "object-format=sha1",
            "|",
            "thin-pack",
            "ofs-delta",
            &format!("want {A}"),
            &format!("want {B}"),
            "deepen 1",
            "filter blob:none",
            "done",
            extra,
            ".",
        ]));
        assert_ne!(base, other, "{extra}");
    }
    let sha256 = pack_text(canonical(&[
        "command=fetch",
        "object-format=sha256",
        "|",
        &format!("want {A}{}", &B[..24]),
        ".",
    ]));
    assert!(sha256.contains("cap object-format=sha256"));
}

#[test]
fn v2_fetches_that_are_not_cached() {
    let want = format!("want {A}");
    let have = format!("have {B}");
    for (lines, reason) in [
        (vec!["command=fetch", "|", &want, &have, "."], "haves"),
        (
            vec![
                "command=fetch",
                "|",
                "want-ref refs/heads/main",
                "done",
                ".",
            ],
            "refs by name",
        ),
        (
            vec!["command=fetch", "|", &want, "deepen-not refs/heads/x", "."],
            "deepen-not",
        ),
        (
            vec![
                "command=fetch",
                "|",
                &want,
                "filter sparse:oid=main:.sparse",
                ".",
            ],
            "filter",
        ),
        (vec!["command=fetch", "|", "want xyz", "."], "object id"),
        (vec!["command=fetch", "|", "done", "."], "wants nothing"),
        (
            vec!["command=object-info", "|", "size", &format!("oid {A}"), "."],
            "object-info",
        ),
    ] {
        let r = bypass_reason(canonical(&lines));
        assert!(r.contains(reason), "{lines:?}: {r}");
    }
}

#[test]
fn ls_refs_normalisation() {
    let a = canonical(&[
        "command=ls-refs",
        "agent=git/2.47.3",
        "object-format=sha1",
        "|",
        "peel",
        "symrefs",
        "unborn",
        "ref-prefix HEAD",
        "ref-prefix refs/heads/",
        "ref-prefix refs/tags/",
        ".",
    ]);
    let b = canonical(&[
        "command=ls-refs",
        "object-format=sha1",
        "agent=other",
        "|",
        "ref-prefix refs/tags/",
        "ref-prefix HEAD",
        "unborn",
        "symrefs",
        "ref-prefix refs/heads/",
        "peel",
        ".",
    ]);
    assert_eq!(a, b);
    assert!(matches!(a, Cacheability::RefList { .. }));
    let c = canonical(&[
        "command=ls-refs",
        "object-format=sha1",
        "|",
        "peel",
        "ref-prefix HEAD",
        ".",
    ]);
    assert_ne!(a, c);
}

#[test]
fn v0_normalisation() {
    let first = format!("want {A} side-band-64k thin-pack ofs-delta agent=git/2.47.3 session-id=1");
    let a = pack_text(canonical(&[
        &first,
        &format!("want {B}"),
        "deepen 1",
        ".",
        "done",
    ]));
    let first2 = format!("want {B} agent=git/2.39.5 ofs-delta side-band-64k thin-pack");
    let b = pack_text(canonical(&[
        &first2,
        &format!("want {A}"),
        "deepen 1",
        ".",
        "done",
    ]));
    assert_eq!(a, b);
    // The first round of a shallow clone (no `done`) differs from the second.
    let c = pack_text(canonical(&[&first2, &format!("want {A}"), "deepen 1", "."]));
    assert_ne!(a, c);
    assert_ne!(a, pack_text(canonical(&[&first2, "deepen 1", ".", "done"])));
    // Haves, deepen-not, ref-based filters and empty requests stream.
    let have = format!("have {C}");
    assert!(bypass_reason(canonical(&[&first, ".", &have, ".", "done"])).contains("haves"));
    assert!(
        bypass_reason(canonical(&[&first, "deepen-not v1", ".", "done"])).contains("deepen-not")
    );
    assert!(
        bypass_reason(canonical(&[
            &first,
            "filter sparse:oid=HEAD:x",
            ".",
            "done"
        ]))
        .contains("filter")
    );
    assert!(bypass_reason(canonical(&["."])).contains("nothing"));
}

#[test]
fn filter_stability() {
    for stable in [
        "blob:none",
        "blob:limit=1m",
        "tree:0",
        "object:type=blob",
        &format!("sparse:oid={A}"),
        "combine:blob:none+tree:2",
        &format!("combine:tree:1+sparse%3Aoid%3D{A}"),
    ] {
        assert!(filter_is_stable(stable), "{stable}");
    }
    for unstable in [
        "sparse:oid=main:.sparse",
        "sparse:path=/etc/x",
        "combine:blob:none+sparse%3Aoid%3Dmain%3Ax",
        "combine:blob:none+",
        "",
    ] {
        assert!(!filter_is_stable(unstable), "{unstable}");
    }
    assert_eq!(percent_decode("a%3Ab%zz%4"), "a:b%zz%4");
}

/// xorshift bytes, deterministic.
fn noise(n: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

#[test]
fn no_input_panics() {
    let valid = [
        body(&[
            "command=fetch",
            "agent=x",
            "|",
            &format!("want {A}"),
            "done",
            ".",
        ]),
        body(&[
            &format!("want {A} thin-pack"),
            "deepen 1",
            ".",
            &format!("have {B}"),
            ".",
            "done",
        ]),
    ];
    for v in &valid {
        // Every truncation and every single-byte corruption.
        for end in 0..=v.len() {
            let _ = parse_request(&v[..end]).map(|r| classify(&r));
        }
        for i in 0..v.len() {
            for b in [0u8, b'0', b'f', b'g', b'\n', 0xff] {
                let mut m = v.clone();
                m[i] = b;
                let _ = parse_request(&m).map(|r| classify(&r));
            }
        }
    }
    // Noise, with and without plausible prefixes.
    for seed in 0..2000u64 {
        let n = (seed as usize * 7) % 300;
        let mut m = noise(n, seed);
        let _ = parse_request(&m);
        if m.len() >= 4 {
            m[..4].copy_from_slice(b"0010");
        }
        let _ = parse_request(&m).map(|r| classify(&r));
    }
}
