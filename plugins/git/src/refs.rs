//! One view of a repository's refs: every protocol-v2 `ls-refs` request,
//! whatever its shape, is answered from one full ref listing.
//!
//! Clients ask `ls-refs` in many shapes (`git fetch` names the prefixes of
//! its refspecs, `git clone` asks for `HEAD`, branches and tags,
//! `git ls-remote` for everything). Cached per shape, each shape would
//! have its own age, and a clone could see an older state than a fetch
//! just saw. Instead the gateway stores one answer per repository, to the
//! request that is a superset of every shape (`peel`, `symrefs`, `unborn`
//! when the client can read it, no `ref-prefix`), and each client's answer
//! is that listing filtered to what the client asked for. Refreshing it
//! moves every shape at once.
//!
//! Pure functions over bytes; no input makes them panic.

use crate::pktline::{Packet, packets};

/// What one `ls-refs` request asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LsRefs {
    /// `object-format=` capability (`sha1` when the client names none).
    pub object_format: String,
    /// Whether the client sent `object-format=` at all.
    pub names_format: bool,
    /// `peel`: annotated tags carry `peeled:<oid>`.
    pub peel: bool,
    /// `symrefs`: symbolic refs carry `symref-target:<ref>`.
    pub symrefs: bool,
    /// `unborn`: an unborn `HEAD` is listed.
    pub unborn: bool,
    /// `ref-prefix` arguments: only refs starting with one of them (all
    /// refs when empty).
    pub prefixes: Vec<String>,
}

/// Reads an `ls-refs` request's capability and argument lines. `None`
/// when it holds anything else (`server-option=`, arguments this module
/// does not know): its answer might not be a filter of the full listing.
pub fn parse(capabilities: &[String], arguments: &[String]) -> Option<LsRefs> {
    let mut r = LsRefs {
        object_format: "sha1".into(),
        names_format: false,
        peel: false,
        symrefs: false,
        unborn: false,
        prefixes: Vec::new(),
    };
    for c in capabilities {
        if let Some(f) = c.strip_prefix("object-format=") {
            if f.is_empty() || !f.bytes().all(|b| b.is_ascii_alphanumeric()) {
                return None;
            }
            r.object_format = f.to_owned();
            r.names_format = true;
        } else if !(c.starts_with("agent=") || c.starts_with("session-id=")) {
            return None;
        }
    }
    for a in arguments {
        match a.as_str() {
            "peel" => r.peel = true,
            "symrefs" => r.symrefs = true,
            "unborn" => r.unborn = true,
            _ => match a.strip_prefix("ref-prefix ") {
                Some(p) if !p.is_empty() => r.prefixes.push(p.to_owned()),
                _ => return None,
            },
        }
    }
    Some(r)
}

/// Appends `line` (plus LF) as one pkt-line.
fn push_pkt(out: &mut Vec<u8>, line: &str) {
    out.extend_from_slice(format!("{:04x}", line.len() + 5).as_bytes());
    out.extend_from_slice(line.as_bytes());
    out.push(b'\n');
}

/// The request for the full listing `r` is a filter of: the client's
/// object format (when it named one), `peel`, `symrefs`, and `unborn`
/// when the client asked for it (only clients whose server advertises it
/// do, and some servers refuse it otherwise).
pub fn full_request(r: &LsRefs) -> Vec<u8> {
    let mut out = Vec::new();
    push_pkt(&mut out, "command=ls-refs");
    if r.names_format {
        push_pkt(&mut out, &format!("object-format={}", r.object_format));
    }
    out.extend_from_slice(b"0001");
    push_pkt(&mut out, "peel");
    push_pkt(&mut out, "symrefs");
    if r.unborn {
        push_pkt(&mut out, "unborn");
    }
    out.extend_from_slice(b"0000");
    out
}

/// `full`, an answer to [`full_request`], filtered to what `r` asks for:
/// refs outside its prefixes, and attributes or an unborn `HEAD` it did
/// not ask for, are left out; everything else is kept in order. `None`
/// when `full` is not a ref listing (an `ERR` packet, bad framing), which
/// the caller passes on as it is.
pub fn filter(full: &[u8], r: &LsRefs) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(full.len());
    for p in packets(full).ok()? {
        match p {
            Packet::Flush => out.extend_from_slice(b"0000"),
            Packet::Delim => out.extend_from_slice(b"0001"),
            Packet::ResponseEnd => out.extend_from_slice(b"0002"),
            Packet::Data(_) => {
                let line = p.text()?;
                if let Some(kept) = filter_line(line, r)? {
                    push_pkt(&mut out, &kept);
                }
            }
        }
    }
    Some(out)
}

/// One listing line (`<oid> <ref> <attr>*` or `unborn <ref> <attr>*`)
/// as `r` should see it: `Some(None)` to leave it out, `None` when it is
/// not a listing line.
fn filter_line(line: &str, r: &LsRefs) -> Option<Option<String>> {
    let mut words = line.split(' ');
    let id = words.next()?;
    let name = words.next().filter(|n| !n.is_empty())?;
    if id != "unborn" && !crate::pktline::is_oid(id) {
        return None;
    }
    if id == "unborn" && !r.unborn {
        return Some(None);
    }
    if !r.prefixes.is_empty() && !r.prefixes.iter().any(|p| name.starts_with(p.as_str())) {
        return Some(None);
    }
    let mut kept = format!("{id} {name}");
    for attr in words {
        let wanted = if attr.starts_with("symref-target:") {
            r.symrefs
        } else if attr.starts_with("peeled:") {
            r.peel
        } else {
            true
        };
        if wanted {
            kept.push(' ');
            kept.push_str(attr);
        }
    }
    Some(Some(kept))
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: &str = "1111111111111111111111111111111111111111";
    const B: &str = "2222222222222222222222222222222222222222";

    fn pkts(lines: &[&str]) -> Vec<u8> {
        let mut out = Vec::new();
        for l in lines {
            push_pkt(&mut out, l);
        }
        out.extend_from_slice(b"0000");
        out
    }

    fn full() -> Vec<u8> {
        pkts(&[
            &format!("{A} HEAD symref-target:refs/heads/main"),
            &format!("{A} refs/heads/main"),
            &format!("{B} refs/tags/v1 peeled:{A}"),
            &format!("{A} refs/tags/v2"),
            &format!("{B} refs/pull/1/head"),
        ])
    }

    fn req(args: &[&str]) -> LsRefs {
        let caps = vec!["agent=git/2.47".to_owned(), "object-format=sha1".to_owned()];
        let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        parse(&caps, &args).unwrap()
    }

    #[test]
    fn a_clone_gets_head_branches_and_tags() {
        let r = req(&[
            "peel",
            "symrefs",
            "ref-prefix HEAD",
            "ref-prefix refs/heads/",
            "ref-prefix refs/tags/",
        ]);
        let want = pkts(&[
            &format!("{A} HEAD symref-target:refs/heads/main"),
            &format!("{A} refs/heads/main"),
            &format!("{B} refs/tags/v1 peeled:{A}"),
            &format!("{A} refs/tags/v2"),
        ]);
        assert_eq!(filter(&full(), &r).unwrap(), want);
    }

    #[test]
    fn attributes_only_when_asked_and_everything_without_prefixes() {
        let r = req(&[]);
        let want = pkts(&[
            &format!("{A} HEAD"),
            &format!("{A} refs/heads/main"),
            &format!("{B} refs/tags/v1"),
            &format!("{A} refs/tags/v2"),
            &format!("{B} refs/pull/1/head"),
        ]);
        assert_eq!(filter(&full(), &r).unwrap(), want);
        let all = req(&["peel", "symrefs"]);
        assert_eq!(filter(&full(), &all).unwrap(), full());
    }

    #[test]
    fn unborn_head_only_for_clients_that_ask() {
        let listing = pkts(&["unborn HEAD symref-target:refs/heads/main"]);
        assert_eq!(
            filter(&listing, &req(&["symrefs"])).unwrap(),
            b"0000".to_vec()
        );
        assert_eq!(
            filter(&listing, &req(&["symrefs", "unborn"])).unwrap(),
            listing
        );
    }

    #[test]
    fn the_full_request_is_a_superset_of_every_shape() {
        let r = req(&["peel", "unborn", "ref-prefix refs/heads/"]);
        let body = full_request(&r);
        match crate::pktline::parse_request(&body).unwrap() {
            crate::pktline::UploadRequest::V2 {
                command,
                capabilities,
                arguments,
            } => {
                assert_eq!(command, "ls-refs");
                assert_eq!(capabilities, ["object-format=sha1"]);
                assert_eq!(arguments, ["peel", "symrefs", "unborn"]);
            }
            other => panic!("{other:?}"),
        }
        let plain = parse(&[], &[]).unwrap();
        assert!(!String::from_utf8_lossy(&full_request(&plain)).contains("object-format"));
    }

    #[test]
    fn requests_that_may_change_the_answer_are_not_shared() {
        let none: &[String] = &[];
        assert!(parse(&["server-option=x".into()], none).is_none());
        assert!(parse(&["object-format=".into()], none).is_none());
        assert!(parse(none, &["ref-prefix ".into()]).is_none());
        assert!(parse(none, &["something-new".into()]).is_none());
    }

    #[test]
    fn an_error_answer_is_not_a_listing() {
        let r = req(&[]);
        assert!(filter(&pkts(&["ERR upload-pack: not our ref"]), &r).is_none());
        assert!(filter(b"00", &r).is_none());
        assert!(filter(&pkts(&["nothex refs/heads/x"]), &r).is_none());
        assert!(filter(&pkts(&[A]), &r).is_none());
    }
}
