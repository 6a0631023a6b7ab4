//! What a path in a Debian archive is: a suite's Release files, an index
//! file under `dists/`, a `by-hash/` name, a package in the pool, a
//! directory, or anything else; and which directories may hold the
//! Release file that lists an index file.

use crate::release::Algo;
use artgate_sdk::path;

/// Which of a suite's Release files.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReleaseFile {
    /// `InRelease`: the Release text with its signature inline.
    InRelease,
    /// `Release`.
    Release,
    /// `Release.gpg`: the detached signature of `Release`.
    ReleaseGpg,
}

impl ReleaseFile {
    /// The file name.
    pub fn name(self) -> &'static str {
        match self {
            ReleaseFile::InRelease => "InRelease",
            ReleaseFile::Release => "Release",
            ReleaseFile::ReleaseGpg => "Release.gpg",
        }
    }

    /// Whether the file holds the Release text (and is inspected).
    pub fn has_text(self) -> bool {
        self != ReleaseFile::ReleaseGpg
    }
}

/// What a remote-relative path is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Kind {
    /// A suite's `InRelease`, `Release` or `Release.gpg`; `dir` is the
    /// directory holding it (`debian/dists/bookworm`; empty for a flat
    /// repository at the remote's root).
    Release {
        /// The release directory.
        dir: String,
        /// Which file.
        file: ReleaseFile,
    },
    /// `{dir}/by-hash/{algorithm}/{hex}`: an index file named by its
    /// digest. `hex` is as requested (checked by the plan).
    ByHash {
        /// The directory holding `by-hash/`.
        dir: String,
        /// The algorithm the directory names.
        algo: Algo,
        /// The digest as requested.
        hex: String,
    },
    /// `by-hash/` with a directory name that is no known algorithm.
    ByHashUnknown,
    /// An index file a Release file may list: anything in a suite's tree
    /// under `dists/` (`Packages.xz`, `i18n/Translation-en.bz2`,
    /// `Contents-amd64.gz`, a component's `Release`, installer files), or a
    /// `Packages`/`Sources`/`Translation-*`/`Contents-*` file of a flat
    /// repository.
    Index,
    /// A package or source file: in a `pool/` tree, or by extension
    /// (`.deb`, `.udeb`, `.ddeb`, `.dsc`, `.changes`, `.buildinfo`,
    /// `.tar.*`, `.diff.gz`).
    Package,
    /// A directory (listing).
    Directory,
    /// Anything else (`README`, `ls-lR.gz`, keyrings, `project/trace/*`).
    Other,
}

/// Compression suffixes of index files.
const COMPRESSIONS: [&str; 6] = [".gz", ".xz", ".bz2", ".lzma", ".zst", ".lz4"];

/// Extensions of package and source files.
const PACKAGE_EXTENSIONS: [&str; 6] = ["deb", "udeb", "ddeb", "dsc", "changes", "buildinfo"];

/// `name` without one compression suffix.
pub fn uncompressed(name: &str) -> &str {
    COMPRESSIONS
        .iter()
        .find_map(|c| name.strip_suffix(c))
        .filter(|s| !s.is_empty())
        .unwrap_or(name)
}

/// Whether `name` is an index file of a flat repository (one without
/// `dists/`): `Packages`, `Sources`, `Translation-*`, `Contents-*`, in any
/// compression.
fn is_flat_index_name(name: &str) -> bool {
    let stem = uncompressed(name);
    matches!(stem, "Packages" | "Sources")
        || ["Translation-", "Contents-"]
            .iter()
            .any(|p| stem.strip_prefix(p).is_some_and(|r| !r.is_empty()))
}

/// Whether `name` is a package or source file by its name.
fn is_package_name(name: &str) -> bool {
    path::extension(name)
        .is_some_and(|e| PACKAGE_EXTENSIONS.iter().any(|p| e.eq_ignore_ascii_case(p)))
        || name.contains(".tar.")
        || name.ends_with(".tar")
        || name.ends_with(".diff.gz")
}

/// The directory of `path` (everything before its last `/`; empty for a
/// name at the root).
pub fn parent(path: &str) -> &str {
    path.rsplit_once('/').map_or("", |(d, _)| d)
}

/// `dir/name`, or `name` when `dir` is empty.
pub fn join(dir: &str, name: &str) -> String {
    if dir.is_empty() {
        name.to_owned()
    } else {
        format!("{dir}/{name}")
    }
}

/// The position of the first `dists` segment of `segs` that has at least
/// a suite and a file after it.
fn dists_index(segs: &[&str]) -> Option<usize> {
    segs.iter()
        .position(|s| *s == "dists")
        .filter(|i| segs.len() >= i + 3)
}

/// Classifies a remote-relative path (as the gateway normalised it).
pub fn kind(p: &str) -> Kind {
    let Some(name) = path::file_name(p) else {
        return Kind::Directory;
    };
    let segs: Vec<&str> = path::segments(p).collect();
    let dir = parent(p);
    let parent_seg = segs.iter().rev().nth(1).copied();
    // `…/by-hash/{algorithm}/{hex}`
    if segs.len() >= 3 && segs.get(segs.len() - 3) == Some(&"by-hash") {
        let holder = parent(parent(dir));
        return match parent_seg.and_then(Algo::from_name) {
            Some(algo) => Kind::ByHash {
                dir: holder.to_owned(),
                algo,
                hex: name.to_owned(),
            },
            None => Kind::ByHashUnknown,
        };
    }
    let in_pool = segs.iter().rev().skip(1).any(|s| *s == "pool");
    let under_dists = dists_index(&segs).is_some();
    let release = match name {
        "InRelease" => Some(ReleaseFile::InRelease),
        "Release.gpg" => Some(ReleaseFile::ReleaseGpg),
        // A component's own `Release` (`main/binary-amd64/Release`) is an
        // index file its suite's Release lists.
        "Release" if !parent_seg.is_some_and(|s| s.starts_with("binary-") || s == "source") => {
            Some(ReleaseFile::Release)
        }
        _ => None,
    };
    if let Some(file) = release
        && !in_pool
    {
        return Kind::Release {
            dir: dir.to_owned(),
            file,
        };
    }
    if under_dists && !in_pool {
        return Kind::Index;
    }
    if in_pool || is_package_name(name) {
        return Kind::Package;
    }
    if is_flat_index_name(name) || name == "Release" {
        return Kind::Index;
    }
    Kind::Other
}

/// A directory that may hold the Release file listing a file, and the
/// file's path relative to it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Candidate {
    /// The release directory (`debian/dists/bookworm`).
    pub dir: String,
    /// The file's path relative to it (`main/binary-amd64/Packages.xz`).
    pub rel: String,
}

/// The directories whose Release file may list the file `p`, most likely
/// first: under `dists/`, the suite is the segment after `dists` or (for
/// suites such as `stretch/updates`) the two segments after it; elsewhere
/// (a flat repository), the file's own directory.
pub fn candidates(p: &str) -> Vec<Candidate> {
    let segs: Vec<&str> = path::segments(p).collect();
    let Some(i) = dists_index(&segs) else {
        return vec![Candidate {
            dir: parent(p).to_owned(),
            rel: path::file_name(p).unwrap_or_default().to_owned(),
        }];
    };
    (1..=2)
        .filter(|depth| i + depth + 1 < segs.len())
        .map(|depth| {
            let (dir, rel) = segs.split_at(i + depth + 1);
            Candidate {
                dir: dir.join("/"),
                rel: rel.join("/"),
            }
        })
        .collect()
}

/// The content type served for `p`.
pub fn content_type(p: &str) -> &'static str {
    let Some(name) = path::file_name(p) else {
        return artgate_sdk::media::OCTET_STREAM;
    };
    const TEXT: &str = "text/plain; charset=utf-8";
    if name == "Release.gpg" {
        return "application/pgp-signature";
    }
    let by_extension = path::extension(name).and_then(|e| {
        let e = e.to_ascii_lowercase();
        match e.as_str() {
            "deb" | "udeb" | "ddeb" => Some("application/vnd.debian.binary-package"),
            "dsc" | "changes" | "buildinfo" => Some(TEXT),
            "lzma" => Some("application/x-lzma"),
            "lz4" => Some("application/x-lz4"),
            "gpg" => Some("application/pgp-keys"),
            _ => artgate_sdk::media::for_extension(&e),
        }
    });
    if let Some(t) = by_extension {
        return t;
    }
    let stem = uncompressed(name);
    let plain_index = matches!(
        stem,
        "InRelease" | "Release" | "Packages" | "Sources" | "Index"
    ) || ["Translation-", "Contents-", "Commands-"]
        .iter()
        .any(|p| stem.starts_with(p));
    if plain_index {
        TEXT
    } else {
        artgate_sdk::media::OCTET_STREAM
    }
}
