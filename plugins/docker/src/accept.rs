//! Manifest media types and content negotiation (`Accept`).

/// OCI image index.
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
/// OCI image manifest.
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
/// Docker manifest list (schema 2).
pub const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
/// Docker image manifest (schema 2).
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";

/// What the gateway asks an upstream for when the client named no types:
/// every current manifest and index type.
pub const DEFAULT_ACCEPT: [&str; 4] = [OCI_INDEX, OCI_MANIFEST, DOCKER_LIST, DOCKER_MANIFEST];

/// Longest canonical accept set used verbatim in a cache key; longer sets
/// are replaced by a hash.
const MAX_KEY_ACCEPT: usize = 1024;

/// The media types a client accepts, from every value of its `Accept`
/// headers: comma-separated, parameters dropped, lower-cased, sorted and
/// deduplicated. Types with `q=0` (not acceptable) are left out. Empty when
/// the client sent no usable `Accept`.
///
/// ```text
/// "B/x; q=0.5, a/y" + "a/y"  →  ["a/y", "b/x"]
/// ```
pub fn canonical<'a>(values: impl IntoIterator<Item = &'a str>) -> Vec<String> {
    let mut out: Vec<String> = values
        .into_iter()
        .flat_map(|v| v.split(','))
        .filter_map(|item| {
            let mut parts = item.split(';');
            let ty = parts.next()?.trim().to_ascii_lowercase();
            let refused = parts.any(|p| {
                let p = p.trim();
                // `get`: a parameter may start with a multi-byte
                // character, and slicing inside it would panic.
                p.len() > 2
                    && p.get(..2).is_some_and(|k| k.eq_ignore_ascii_case("q="))
                    && p[2..].parse::<f32>().is_ok_and(|q| q <= 0.0)
            });
            (!ty.is_empty() && ty.contains('/') && !refused).then_some(ty)
        })
        .collect();
    out.sort();
    out.dedup();
    out
}

/// The media type of a `Content-Type` value: parameters dropped,
/// lower-cased.
pub fn bare(content_type: &str) -> String {
    content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase()
}

/// Whether `content_type` is in the canonical accept set `accepted`,
/// directly or through `*/*` or `type/*`.
pub fn accepts(accepted: &[String], content_type: &str) -> bool {
    let ct = bare(content_type);
    let major = ct.split('/').next().unwrap_or("");
    accepted
        .iter()
        .any(|a| a == &ct || a == "*/*" || a.strip_suffix("/*").is_some_and(|m| m == major))
}

/// Whether `content_type` names a manifest or index format the gateway
/// knows (the OCI and Docker schema 2 types, and Docker schema 1).
pub fn is_manifest_type(content_type: &str) -> bool {
    let ct = bare(content_type);
    DEFAULT_ACCEPT.contains(&ct.as_str())
        || ct == "application/vnd.docker.distribution.manifest.v1+json"
        || ct == "application/vnd.docker.distribution.manifest.v1+prettyjws"
}

/// The accept set as it appears in a cache key: the canonical types joined
/// by `,`, or `any` when the client named none; a hash when very long.
pub fn key_part(accepted: &[String]) -> String {
    if accepted.is_empty() {
        return "any".into();
    }
    let joined = accepted.join(",");
    if joined.len() <= MAX_KEY_ACCEPT {
        joined
    } else {
        format!("fnv64-{:016x}", crate::fnv64(joined.as_bytes()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonicalisation() {
        assert_eq!(
            canonical(["B/x; q=0.5, a/y", "a/y", " c/z ;q=0", "", "junk"]),
            ["a/y", "b/x"]
        );
        assert!(canonical(std::iter::empty()).is_empty());
        // Order and duplicates do not matter.
        assert_eq!(
            canonical([format!("{OCI_MANIFEST},{OCI_INDEX}").as_str()]),
            canonical([OCI_INDEX, OCI_MANIFEST, OCI_INDEX])
        );
        assert_eq!(canonical(["a/b;q=0.0", "c/d;Q=0.001"]), ["c/d"]);
    }

    #[test]
    fn parameters_with_multibyte_characters() {
        // Found by the fuzz target `docker_accept`: a parameter whose second
        // byte is inside a character used to panic (slicing `p[..2]`).
        assert_eq!(canonical(["a/b;aé, c/d ; éq=0"]), ["a/b", "c/d"]);
        assert_eq!(canonical(["a/b;q=0é"]), ["a/b"]);
        assert_eq!(canonical(["a/b;\u{1F600}"]), ["a/b"]);
    }

    #[test]
    fn matching() {
        let set = canonical([OCI_INDEX, DOCKER_MANIFEST]);
        assert!(accepts(&set, OCI_INDEX));
        assert!(accepts(&set, &format!("{DOCKER_MANIFEST}; charset=utf-8")));
        assert!(!accepts(&set, OCI_MANIFEST));
        assert!(accepts(&canonical(["*/*"]), OCI_MANIFEST));
        assert!(accepts(&canonical(["application/*"]), OCI_MANIFEST));
        assert!(!accepts(&canonical(["text/*"]), OCI_MANIFEST));
        assert!(!accepts(&[], OCI_MANIFEST));
    }

    #[test]
    fn manifest_types() {
        assert!(is_manifest_type(OCI_INDEX));
        assert!(is_manifest_type(
            "application/vnd.docker.distribution.manifest.v1+prettyjws"
        ));
        assert!(!is_manifest_type("application/octet-stream"));
        assert!(!is_manifest_type("application/json"));
    }

    #[test]
    fn keys() {
        assert_eq!(key_part(&[]), "any");
        assert_eq!(
            key_part(&canonical([OCI_MANIFEST, OCI_INDEX])),
            format!("{OCI_INDEX},{OCI_MANIFEST}")
        );
        let long: Vec<String> = (0..100).map(|i| format!("application/x-{i}")).collect();
        let k = key_part(&long);
        assert!(k.starts_with("fnv64-") && k.len() == 22, "{k}");
    }
}
