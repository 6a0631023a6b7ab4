//! Media types by file extension.

/// The media type for files without a known extension.
pub const OCTET_STREAM: &str = "application/octet-stream";

/// The media type of the file `path` names, by its extension
/// (case-insensitive); [`OCTET_STREAM`] when the extension is unknown or
/// there is none.
///
/// ```
/// use artgate_sdk::media::content_type;
/// assert_eq!(content_type("Packages/bash-5.2.rpm"), "application/x-rpm");
/// assert_eq!(content_type("v3.20/main/x86_64/APKINDEX.tar.gz"), "application/gzip");
/// assert_eq!(content_type("blob"), "application/octet-stream");
/// ```
pub fn content_type(path: &str) -> &'static str {
    crate::path::extension(path)
        .and_then(for_extension)
        .unwrap_or(OCTET_STREAM)
}

/// The media type for a file extension (without the dot, case-insensitive),
/// or `None` when it is not known.
///
/// Alpine's `.apk` packages are gzip-compressed tarballs, so `.apk` maps to
/// `application/gzip` (not the Android package type).
pub fn for_extension(ext: &str) -> Option<&'static str> {
    const TABLE: &[(&str, &str)] = &[
        ("rpm", "application/x-rpm"),
        ("xml", "application/xml"),
        ("pom", "application/xml"),
        ("gz", "application/gzip"),
        ("tgz", "application/gzip"),
        ("apk", "application/gzip"),
        ("xz", "application/x-xz"),
        ("zst", "application/zstd"),
        ("bz2", "application/x-bzip2"),
        ("asc", "application/pgp-signature"),
        ("sig", "application/pgp-signature"),
        ("key", "application/pgp-keys"),
        ("json", "application/json"),
        ("tar", "application/x-tar"),
        ("zip", "application/zip"),
        ("whl", "application/zip"),
        ("egg", "application/zip"),
        ("jar", "application/java-archive"),
        ("deb", "application/vnd.debian.binary-package"),
        ("iso", "application/x-iso9660-image"),
        ("html", "text/html; charset=utf-8"),
        ("htm", "text/html; charset=utf-8"),
        ("txt", "text/plain; charset=utf-8"),
    ];
    TABLE
        .iter()
        .find(|(e, _)| e.eq_ignore_ascii_case(ext))
        .map(|&(_, t)| t)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table() {
        let cases = [
            ("a.rpm", "application/x-rpm"),
            ("repodata/repomd.xml", "application/xml"),
            ("a.tar.gz", "application/gzip"),
            ("a.tgz", "application/gzip"),
            ("main/x86_64/busybox-1.36.apk", "application/gzip"),
            ("a.xz", "application/x-xz"),
            ("a.zst", "application/zstd"),
            ("repomd.xml.asc", "application/pgp-signature"),
            ("a.sig", "application/pgp-signature"),
            ("a.json", "application/json"),
            ("a.tar", "application/x-tar"),
            ("a.zip", "application/zip"),
            ("pkg-1.0-py3-none-any.whl", "application/zip"),
            ("index.html", "text/html; charset=utf-8"),
            ("notes.txt", "text/plain; charset=utf-8"),
            ("a.deb", "application/vnd.debian.binary-package"),
            ("a.jar", "application/java-archive"),
            ("a.pom", "application/xml"),
            ("a.iso", "application/x-iso9660-image"),
            ("RPM-GPG-KEY.key", "application/pgp-keys"),
        ];
        for (path, want) in cases {
            assert_eq!(content_type(path), want, "{path}");
        }
    }

    #[test]
    fn case_insensitive_and_default() {
        assert_eq!(content_type("A.RPM"), "application/x-rpm");
        assert_eq!(content_type("Json.JSON"), "application/json");
        assert_eq!(content_type("a.unknown"), OCTET_STREAM);
        assert_eq!(content_type("RPM-GPG-KEY-AlmaLinux"), OCTET_STREAM);
        assert_eq!(content_type("dir.rpm/"), OCTET_STREAM);
        assert_eq!(content_type(".rpm"), OCTET_STREAM);
        assert_eq!(for_extension("nope"), None);
    }
}
