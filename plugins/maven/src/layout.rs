//! The Maven repository layout: what a path names.
//!
//! A file of a version lives at
//! `{group as path}/{artifactId}/{version}/{artifactId}-{version}[-{classifier}].{extension}`;
//! a `-SNAPSHOT` version's files are either timestamped
//! (`{artifactId}-{base}-{yyyyMMdd.HHmmss}-{buildNumber}…`, each deploy a
//! new name) or carry the version itself (legacy, overwritten in place).
//! Checksum files add `.md5`, `.sha1`, `.sha256` or `.sha512` to the file
//! they describe; signatures add `.asc`. `maven-metadata.xml` (and its
//! checksums) sits at the group level (plugin prefixes), the artifact level
//! (the version list) and in a `-SNAPSHOT` version's directory (the latest
//! timestamp and each file's current name).

use artgate_sdk::path;

/// The checksum algorithms of Maven checksum files.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Algorithm {
    /// `.md5`
    Md5,
    /// `.sha1`
    Sha1,
    /// `.sha256`
    Sha256,
    /// `.sha512`
    Sha512,
}

impl Algorithm {
    /// Every algorithm, in the order of their file suffixes.
    pub const ALL: [Algorithm; 4] = [
        Algorithm::Md5,
        Algorithm::Sha1,
        Algorithm::Sha256,
        Algorithm::Sha512,
    ];

    /// The file suffix, without the dot.
    pub fn suffix(self) -> &'static str {
        match self {
            Algorithm::Md5 => "md5",
            Algorithm::Sha1 => "sha1",
            Algorithm::Sha256 => "sha256",
            Algorithm::Sha512 => "sha512",
        }
    }

    /// The length of the digest in hex digits.
    pub fn hex_len(self) -> usize {
        match self {
            Algorithm::Md5 => 32,
            Algorithm::Sha1 => 40,
            Algorithm::Sha256 => 64,
            Algorithm::Sha512 => 128,
        }
    }

    /// Splits a checksum suffix off `name`: `("a.jar", Some(Sha1))` for
    /// `a.jar.sha1`.
    pub fn split(name: &str) -> (&str, Option<Algorithm>) {
        for a in Algorithm::ALL {
            if let Some(base) = name
                .strip_suffix(a.suffix())
                .and_then(|b| b.strip_suffix('.'))
                && !base.is_empty()
            {
                return (base, Some(a));
            }
        }
        (name, None)
    }
}

/// Whether a `-SNAPSHOT` version's file is timestamped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Snapshot {
    /// A release version.
    No,
    /// A snapshot file named by its deploy's timestamp and build number:
    /// its content never changes.
    Timestamped,
    /// A snapshot file named by the version itself: overwritten in place.
    NonUnique,
}

/// A file of a version.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VersionFile<'a> {
    /// The group as a path (`org/example`).
    pub group: &'a str,
    /// The artifactId.
    pub artifact: &'a str,
    /// The version directory (`1.0`, `1.0-SNAPSHOT`).
    pub version: &'a str,
    /// For a timestamped snapshot file, its `{base}-{timestamp}-{build}`
    /// (`1.0-20261207.101500-3`); else the version.
    pub file_version: &'a str,
    /// The classifier (`sources`), or empty.
    pub classifier: &'a str,
    /// The extension (`jar`, `pom`, `tar.gz`, `jar.asc`).
    pub extension: &'a str,
    /// The checksum file's algorithm, when this is one.
    pub checksum: Option<Algorithm>,
    /// Whether the version is a snapshot, and how the file is named.
    pub snapshot: Snapshot,
}

impl VersionFile<'_> {
    /// The path of the file a checksum file describes (the path itself
    /// when this is no checksum file).
    pub fn base_path<'p>(&self, path: &'p str) -> &'p str {
        match self.checksum {
            Some(a) => path
                .strip_suffix(a.suffix())
                .and_then(|p| p.strip_suffix('.'))
                .unwrap_or(path),
            None => path,
        }
    }

    /// For a timestamped snapshot file, its timestamp and build number.
    pub fn timestamp_build(&self) -> Option<(&str, u32)> {
        if self.snapshot != Snapshot::Timestamped {
            return None;
        }
        let (rest, build) = self.file_version.rsplit_once('-')?;
        let (_, ts) = rest.rsplit_once('-')?;
        Some((ts, build.parse().ok()?))
    }
}

/// What a remote-relative path names.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Kind<'a> {
    /// A directory (listing).
    Directory,
    /// `{dir}/maven-metadata.xml` or one of its checksum files; `dir` is
    /// the directory (empty at the root).
    Metadata {
        /// The directory holding it, without a trailing `/`.
        dir: &'a str,
        /// The checksum file's algorithm, when this is one.
        checksum: Option<Algorithm>,
    },
    /// A file of a version.
    File(VersionFile<'a>),
    /// Anything else (`archetype-catalog.xml`, `.index/`, a file in a
    /// version directory not named after it).
    Other,
}

/// The name of metadata files.
pub const METADATA: &str = "maven-metadata.xml";

/// Whether `version` is a snapshot version (as Maven's resolver decides:
/// it ends in `SNAPSHOT`).
pub fn is_snapshot(version: &str) -> bool {
    version.ends_with("SNAPSHOT")
}

/// Classifies a remote-relative path.
pub fn kind(p: &str) -> Kind<'_> {
    if p.is_empty() || path::is_dir(p) {
        return Kind::Directory;
    }
    let Some(name) = path::file_name(p) else {
        return Kind::Directory;
    };
    let (base_name, checksum) = Algorithm::split(name);
    if base_name == METADATA {
        let dir = p[..p.len() - name.len()].trim_end_matches('/');
        return Kind::Metadata { dir, checksum };
    }
    version_file(p).map(Kind::File).unwrap_or(Kind::Other)
}

/// `p` as a file of a version, if it is one.
fn version_file(p: &str) -> Option<VersionFile<'_>> {
    let mut segs = p.rsplitn(4, '/');
    let name = segs.next()?;
    let version = segs.next()?;
    let artifact = segs.next()?;
    let group = segs.next()?;
    if [name, version, artifact, group]
        .iter()
        .any(|s| s.is_empty())
        || group
            .split('/')
            .any(|s| s.is_empty() || s == "." || s == "..")
        || [version, artifact].iter().any(|s| *s == "." || *s == "..")
    {
        return None;
    }
    let (stem, checksum) = Algorithm::split(name);
    let after_artifact = stem.strip_prefix(artifact)?.strip_prefix('-')?;
    let (file_version, rest, snapshot) = if is_snapshot(version) {
        if let Some(rest) = after_artifact.strip_prefix(version) {
            (version, rest, Snapshot::NonUnique)
        } else {
            let base = version.strip_suffix("-SNAPSHOT")?;
            let tail = after_artifact.strip_prefix(base)?.strip_prefix('-')?;
            let len = timestamp_build_len(tail)?;
            (
                &after_artifact[..base.len() + 1 + len],
                &tail[len..],
                Snapshot::Timestamped,
            )
        }
    } else {
        (version, after_artifact.strip_prefix(version)?, Snapshot::No)
    };
    let (classifier, extension) = match rest.as_bytes().first() {
        Some(b'.') => ("", &rest[1..]),
        Some(b'-') => rest[1..].split_once('.')?,
        _ => return None,
    };
    if extension.is_empty() || extension.starts_with('.') || extension.ends_with('.') {
        return None;
    }
    Some(VersionFile {
        group,
        artifact,
        version,
        file_version,
        classifier,
        extension,
        checksum,
        snapshot,
    })
}

/// The length of a `yyyyMMdd.HHmmss-N` prefix of `s`.
fn timestamp_build_len(s: &str) -> Option<usize> {
    let b = s.as_bytes();
    let digits =
        |r: std::ops::Range<usize>| b.get(r).is_some_and(|d| d.iter().all(u8::is_ascii_digit));
    if !(digits(0..8) && b.get(8) == Some(&b'.') && digits(9..15) && b.get(15) == Some(&b'-')) {
        return None;
    }
    let n = b[16..].iter().take_while(|c| c.is_ascii_digit()).count();
    (n > 0 && n <= 9).then_some(16 + n)
}

/// The `groupId` of a group path (`org/example` → `org.example`).
pub fn group_id(group_path: &str) -> String {
    group_path.replace('/', ".")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(p: &str) -> VersionFile<'_> {
        match kind(p) {
            Kind::File(f) => f,
            k => panic!("{p}: {k:?}"),
        }
    }

    #[test]
    fn release_files() {
        let f = file("org/example/lib/1.0/lib-1.0.jar");
        assert_eq!(
            (f.group, f.artifact, f.version, f.classifier, f.extension),
            ("org/example", "lib", "1.0", "", "jar")
        );
        assert_eq!((f.checksum, f.snapshot), (None, Snapshot::No));
        let f = file("org/example/lib/1.0/lib-1.0-sources.jar.sha1");
        assert_eq!((f.classifier, f.extension), ("sources", "jar"));
        assert_eq!(f.checksum, Some(Algorithm::Sha1));
        assert_eq!(
            f.base_path("org/example/lib/1.0/lib-1.0-sources.jar.sha1"),
            "org/example/lib/1.0/lib-1.0-sources.jar"
        );
        let f = file("g/a/2.1/a-2.1.tar.gz");
        assert_eq!(f.extension, "tar.gz");
        let f = file("g/a/2.1/a-2.1.pom.asc");
        assert_eq!(f.extension, "pom.asc");
        // An artifactId with a dash and a version that starts like another.
        let f = file("g/my-lib/1.0-rc1/my-lib-1.0-rc1-tests.jar");
        assert_eq!(
            (f.artifact, f.version, f.classifier),
            ("my-lib", "1.0-rc1", "tests")
        );
    }

    #[test]
    fn snapshot_files() {
        let f = file("g/a/1.0-SNAPSHOT/a-1.0-20261207.101500-3.jar");
        assert_eq!(f.snapshot, Snapshot::Timestamped);
        assert_eq!(f.file_version, "1.0-20261207.101500-3");
        assert_eq!(f.timestamp_build(), Some(("20261207.101500", 3)));
        let f = file("g/a/1.0-SNAPSHOT/a-1.0-20261207.101500-3-sources.jar.md5");
        assert_eq!(
            (f.classifier, f.checksum),
            ("sources", Some(Algorithm::Md5))
        );
        let f = file("g/a/1.0-SNAPSHOT/a-1.0-SNAPSHOT.jar");
        assert_eq!(f.snapshot, Snapshot::NonUnique);
        assert_eq!(f.timestamp_build(), None);
        // Maven's resolver takes any version ending in SNAPSHOT for one.
        assert_eq!(
            file("g/a/1.0.SNAPSHOT/a-1.0.SNAPSHOT.jar").snapshot,
            Snapshot::NonUnique
        );
    }

    #[test]
    fn metadata_and_others() {
        assert_eq!(
            kind("org/example/lib/maven-metadata.xml"),
            Kind::Metadata {
                dir: "org/example/lib",
                checksum: None
            }
        );
        assert_eq!(
            kind("g/a/1.0-SNAPSHOT/maven-metadata.xml.sha256"),
            Kind::Metadata {
                dir: "g/a/1.0-SNAPSHOT",
                checksum: Some(Algorithm::Sha256)
            }
        );
        assert_eq!(
            kind("maven-metadata.xml"),
            Kind::Metadata {
                dir: "",
                checksum: None
            }
        );
        assert_eq!(kind(""), Kind::Directory);
        assert_eq!(kind("org/example/"), Kind::Directory);
        assert_eq!(kind("archetype-catalog.xml"), Kind::Other);
        assert_eq!(kind("g/a/1.0/other-1.0.jar"), Kind::Other);
        assert_eq!(kind("g/a/1.0/a-1.0"), Kind::Other);
        assert_eq!(kind("g/a/1.0/a-1.0."), Kind::Other);
        assert_eq!(kind("a/1.0/a-1.0.jar"), Kind::Other, "no group");
        assert_eq!(kind("g/../a/1.0/a-1.0.jar"), Kind::Other);
        assert_eq!(kind("g/a/1.0-SNAPSHOT/a-1.0-2026.jar"), Kind::Other);
    }

    #[test]
    fn group_ids() {
        assert_eq!(group_id("org/example"), "org.example");
    }

    proptest::proptest! {
        #[test]
        fn never_panics(p in "[a-z0-9./-]{0,60}") {
            let _ = kind(&p);
        }
    }
}
