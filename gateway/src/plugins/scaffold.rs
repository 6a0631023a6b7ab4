//! `artgate plugin new NAME [--lang rust|python] [--dir D]`: write a ready
//! adapter project from the templates in `templates/` (embedded with
//! `include_str!`): sources, a README, and `cases/` with golden cases for
//! `artgate plugin check`.
//!
//! A Rust project gets its own copy of the SDK (`artgate-sdk/`: the
//! sources of `plugins/sdk`, the WIT, a manifest with the SDK's pinned
//! dependencies) and a `Cargo.lock` with the versions the built-in
//! adapters are built and tested with, so it builds from the public crate
//! registry alone, with nothing but the `artgate` binary at hand.
//! `artgate plugin sdk` ([`refresh_sdk`]) rewrites that copy with the SDK
//! of the binary that runs it. `--sdk PATH` depends on a checkout's SDK by
//! path instead.

use std::path::{Path, PathBuf};

/// The language of a new adapter project.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lang {
    /// Rust with the `artgate-sdk` crate, built for `wasm32-wasip2`.
    Rust,
    /// Python built with componentize-py.
    Python,
}

/// What to generate.
#[derive(Debug, Clone)]
pub struct NewArgs {
    /// Adapter name (also the package type and the project name).
    pub name: String,
    /// Language.
    pub lang: Lang,
    /// Project directory (default `./NAME`). Must not exist or be empty.
    pub dir: Option<PathBuf>,
    /// Path of an `artgate-sdk` crate to depend on (Rust; default: a copy
    /// written into the project, [`SDK_DIR`]).
    pub sdk: Option<PathBuf>,
}

/// Where a Rust project keeps its copy of the SDK.
pub const SDK_DIR: &str = "artgate-sdk";

/// The SDK's version (the `artgate-sdk` crate's, which is the gateway's).
const SDK_VERSION: &str = env!("CARGO_PKG_VERSION");

/// The SDK's sources, as `plugins/sdk/src` has them (a unit test checks
/// that none is missing); written under [`SDK_DIR`]`/src`.
const SDK_SOURCES: &[(&str, &str)] = &[
    (
        "adapter.rs",
        include_str!("../../../plugins/sdk/src/adapter.rs"),
    ),
    (
        "capabilities.rs",
        include_str!("../../../plugins/sdk/src/capabilities.rs"),
    ),
    (
        "digest.rs",
        include_str!("../../../plugins/sdk/src/digest.rs"),
    ),
    (
        "duration.rs",
        include_str!("../../../plugins/sdk/src/duration.rs"),
    ),
    ("fuzz.rs", include_str!("../../../plugins/sdk/src/fuzz.rs")),
    ("http.rs", include_str!("../../../plugins/sdk/src/http.rs")),
    (
        "kvlock.rs",
        include_str!("../../../plugins/sdk/src/kvlock.rs"),
    ),
    (
        "kvmap.rs",
        include_str!("../../../plugins/sdk/src/kvmap.rs"),
    ),
    ("lib.rs", include_str!("../../../plugins/sdk/src/lib.rs")),
    ("log.rs", include_str!("../../../plugins/sdk/src/log.rs")),
    (
        "markup.rs",
        include_str!("../../../plugins/sdk/src/markup.rs"),
    ),
    (
        "media.rs",
        include_str!("../../../plugins/sdk/src/media.rs"),
    ),
    ("path.rs", include_str!("../../../plugins/sdk/src/path.rs")),
    (
        "pattern.rs",
        include_str!("../../../plugins/sdk/src/pattern.rs"),
    ),
    ("plan.rs", include_str!("../../../plugins/sdk/src/plan.rs")),
    (
        "testing.rs",
        include_str!("../../../plugins/sdk/src/testing.rs"),
    ),
    ("time.rs", include_str!("../../../plugins/sdk/src/time.rs")),
];

/// The SDK's manifest in a project (its dependencies as `plugins/Cargo.toml`
/// pins them; a unit test compares the two).
const SDK_MANIFEST: &str = include_str!("templates/rust/sdk-Cargo.toml.in");

/// The versions the built-in adapters are built with; a new project starts
/// from them (cargo drops the entries it does not use).
const SDK_LOCK: &str = include_str!("../../../plugins/Cargo.lock");

/// Where the SDK's `lib.rs` finds the WIT in the repository, and in a copy.
const WIT_PATH_IN_REPO: &str = "path: \"../../wit\"";
const WIT_PATH_IN_COPY: &str = "path: \"wit\"";

/// The WIT package, copied into Python projects (componentize-py reads it).
const WIT: &str = include_str!("../../../wit/adapter.wit");

const RUST_FILES: &[(&str, &str)] = &[
    ("Cargo.toml", include_str!("templates/rust/Cargo.toml.in")),
    ("src/lib.rs", include_str!("templates/rust/lib.rs.in")),
    ("README.md", include_str!("templates/rust/README.md.in")),
    (
        "cases/01-file.toml",
        include_str!("templates/rust/case-file.toml.in"),
    ),
    (
        "cases/02-index.toml",
        include_str!("templates/rust/case-index.toml.in"),
    ),
    (
        "cases/03-put.toml",
        include_str!("templates/rust/case-put.toml.in"),
    ),
    (".gitignore", include_str!("templates/rust/gitignore.in")),
];

const PYTHON_FILES: &[(&str, &str)] = &[
    ("app.py", include_str!("templates/python/app.py.in")),
    ("README.md", include_str!("templates/python/README.md.in")),
    ("wit/adapter.wit", WIT),
    (
        "cases/01-file.toml",
        include_str!("templates/python/case-file.toml.in"),
    ),
    (
        "cases/02-index.toml",
        include_str!("templates/python/case-index.toml.in"),
    ),
    (
        "cases/03-put.toml",
        include_str!("templates/python/case-put.toml.in"),
    ),
    (".gitignore", include_str!("templates/python/gitignore.in")),
];

/// What was written.
#[derive(Debug)]
pub struct Created {
    /// The project directory.
    pub dir: PathBuf,
    /// Files written, relative to `dir`.
    pub files: Vec<String>,
    /// How the Rust project depends on `artgate-sdk`, in words.
    pub sdk_note: Option<String>,
    /// The commands that build and check it.
    pub next_steps: Vec<String>,
}

/// Check an adapter name: `[a-z][a-z0-9_-]*`, at most 64 characters (what
/// the gateway accepts from `describe`, and a valid crate name).
pub fn validate_name(name: &str) -> Result<(), String> {
    // A crate name too, so it starts with a letter.
    let ok = crate::config::is_adapter_name(name) && name.as_bytes()[0].is_ascii_lowercase();
    if ok {
        Ok(())
    } else {
        Err(format!(
            "{name:?} is not a valid adapter name: use a lower-case letter, then [a-z0-9_-], at most 64 characters"
        ))
    }
}

/// Write the project.
pub fn create(args: &NewArgs) -> Result<Created, String> {
    validate_name(&args.name)?;
    let dir = args
        .dir
        .clone()
        .unwrap_or_else(|| PathBuf::from(&args.name));
    if dir.exists()
        && std::fs::read_dir(&dir)
            .map(|mut d| d.next().is_some())
            .unwrap_or(true)
    {
        return Err(format!(
            "{} exists and is not empty; choose another --dir",
            dir.display()
        ));
    }
    let lib_name = args.name.replace('-', "_");
    let (sdk_dep, sdk_note) = match args.lang {
        Lang::Rust => sdk_dependency(args.sdk.as_deref())?,
        Lang::Python => (String::new(), String::new()),
    };
    let vars: [(&str, String); 6] = [
        ("{{name}}", args.name.clone()),
        ("{{lib_name}}", lib_name.clone()),
        ("{{type_name}}", camel_case(&args.name)),
        ("{{wit_version}}", super::world::WIT_VERSION.to_owned()),
        ("{{sdk_dep}}", sdk_dep),
        ("{{sdk_note}}", sdk_note.clone()),
    ];
    let files = match args.lang {
        Lang::Rust => RUST_FILES,
        Lang::Python => PYTHON_FILES,
    };
    let mut written = Vec::new();
    for (rel, template) in files {
        let mut text = (*template).to_owned();
        if *rel != "wit/adapter.wit" {
            for (k, v) in &vars {
                text = text.replace(k, v);
            }
        }
        let path = dir.join(rel);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(|e| format!("{}: {e}", parent.display()))?;
        }
        std::fs::write(&path, text).map_err(|e| format!("{}: {e}", path.display()))?;
        written.push((*rel).to_owned());
    }
    if args.lang == Lang::Rust && args.sdk.is_none() {
        written.extend(write_sdk(&dir)?);
        write_file(&dir.join("Cargo.lock"), SDK_LOCK)?;
        written.push("Cargo.lock".to_owned());
    }
    let next_steps = match args.lang {
        Lang::Rust => vec![
            format!("cd {}", dir.display()),
            "cargo build --release --target wasm32-wasip2".to_owned(),
            format!(
                "artgate plugin check target/wasm32-wasip2/release/{lib_name}.wasm --cases cases"
            ),
        ],
        Lang::Python => vec![
            format!("cd {}", dir.display()),
            format!(
                "componentize-py -d wit -w adapter componentize app -o {}.wasm",
                args.name
            ),
            format!("artgate plugin check {}.wasm --cases cases", args.name),
        ],
    };
    Ok(Created {
        dir,
        files: written,
        sdk_note: (args.lang == Lang::Rust).then_some(sdk_note),
        next_steps,
    })
}

/// The `artgate-sdk = ...` line and a sentence describing it: the copy
/// in the project, or the crate `--sdk` names, by path.
fn sdk_dependency(explicit: Option<&Path>) -> Result<(String, String), String> {
    let Some(p) = explicit else {
        return Ok((
            sdk_copy_dependency(),
            format!("its copy in `{SDK_DIR}/` (SDK {SDK_VERSION})"),
        ));
    };
    if !std::fs::read_to_string(p.join("Cargo.toml"))
        .is_ok_and(|t| t.contains("name = \"artgate-sdk\""))
    {
        return Err(format!(
            "--sdk {}: no artgate-sdk crate there (give plugins/sdk of an artgate checkout)",
            p.display()
        ));
    }
    let p = std::fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf());
    let shown = p.display().to_string();
    Ok((
        format!("artgate-sdk = {{ path = {shown:?} }}"),
        format!("a path, `{shown}`"),
    ))
}

/// The `Cargo.toml` line of a project that depends on its SDK copy.
fn sdk_copy_dependency() -> String {
    format!("artgate-sdk = {{ path = {SDK_DIR:?} }}")
}

/// Write the SDK (sources, WIT, manifest) into `project`/[`SDK_DIR`],
/// replacing what is there; returns the files written, relative to
/// `project`.
fn write_sdk(project: &Path) -> Result<Vec<String>, String> {
    let sdk = project.join(SDK_DIR);
    if sdk.exists() {
        std::fs::remove_dir_all(&sdk).map_err(|e| format!("{}: {e}", sdk.display()))?;
    }
    let manifest = SDK_MANIFEST
        .replace("{{sdk_version}}", SDK_VERSION)
        .replace("{{wit_version}}", super::world::WIT_VERSION);
    let mut files = vec![
        ("Cargo.toml".to_owned(), manifest),
        ("wit/adapter.wit".to_owned(), WIT.to_owned()),
    ];
    for (name, text) in SDK_SOURCES {
        let text = if *name == "lib.rs" {
            text.replace(WIT_PATH_IN_REPO, WIT_PATH_IN_COPY)
        } else {
            (*text).to_owned()
        };
        files.push((format!("src/{name}"), text));
    }
    let mut written = Vec::new();
    for (rel, text) in files {
        write_file(&sdk.join(&rel), &text)?;
        written.push(format!("{SDK_DIR}/{rel}"));
    }
    Ok(written)
}

fn write_file(path: &Path, text: &str) -> Result<(), String> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(|e| format!("{}: {e}", parent.display()))?;
    }
    std::fs::write(path, text).map_err(|e| format!("{}: {e}", path.display()))
}

/// `artgate plugin sdk [--dir D]`: rewrite the SDK copy of the Rust
/// project in `project` with this binary's SDK. Refused unless the
/// project's `Cargo.toml` depends on the copy (`path = "artgate-sdk"`), so
/// it never writes into a directory that is not such a project. Returns
/// the files written.
pub fn refresh_sdk(project: &Path) -> Result<Vec<String>, String> {
    let manifest = project.join("Cargo.toml");
    let text = std::fs::read_to_string(&manifest).map_err(|e| {
        format!(
            "{}: {e} (run this in an adapter project)",
            manifest.display()
        )
    })?;
    let ours = sdk_copy_dependency();
    if !text.lines().any(|l| l.trim() == ours) {
        return Err(format!(
            "{} does not depend on a copy of the SDK (no line `{ours}`); nothing was written",
            manifest.display()
        ));
    }
    write_sdk(project)
}

/// `my-format_x` → `MyFormatX`.
fn camel_case(name: &str) -> String {
    name.split(['-', '_'])
        .filter(|p| !p.is_empty())
        .map(|p| {
            let mut c = p.chars();
            match c.next() {
                Some(f) => f.to_ascii_uppercase().to_string() + c.as_str(),
                None => String::new(),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert!(validate_name("my-format").is_ok());
        assert!(validate_name("pypi2").is_ok());
        assert!(validate_name("My").is_err());
        assert!(validate_name("9x").is_err());
        assert!(validate_name("").is_err());
        assert_eq!(camel_case("my-format_x"), "MyFormatX");
    }

    /// Every file of `plugins/sdk/src` is copied into new projects.
    #[test]
    fn the_sdk_copy_has_every_source_file() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../plugins/sdk/src");
        let mut on_disk: Vec<String> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        on_disk.sort();
        let copied: Vec<String> = SDK_SOURCES.iter().map(|(n, _)| (*n).to_owned()).collect();
        assert_eq!(copied, on_disk, "SDK_SOURCES must list plugins/sdk/src");
        let lib = SDK_SOURCES.iter().find(|(n, _)| *n == "lib.rs").unwrap().1;
        assert_eq!(
            lib.matches(WIT_PATH_IN_REPO).count(),
            1,
            "the WIT path in lib.rs moved"
        );
    }

    /// The copy's manifest pins what the SDK in the repository uses.
    #[test]
    fn the_sdk_copy_pins_the_workspace_dependencies() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../plugins");
        let read = |p: &Path| -> toml::Table {
            toml::from_str(&std::fs::read_to_string(p).unwrap()).unwrap()
        };
        let workspace = read(&root.join("Cargo.toml"));
        let sdk = read(&root.join("sdk/Cargo.toml"));
        let copy: toml::Table = toml::from_str(
            &SDK_MANIFEST
                .replace("{{sdk_version}}", SDK_VERSION)
                .replace("{{wit_version}}", "0"),
        )
        .unwrap();
        let pinned = &workspace["workspace"]["dependencies"];
        for section in ["dependencies", "dev-dependencies"] {
            let names: Vec<&String> = sdk[section].as_table().unwrap().keys().collect();
            let copied: Vec<&String> = copy[section].as_table().unwrap().keys().collect();
            assert_eq!(names, copied, "[{section}]");
            for name in names {
                assert_eq!(
                    copy[section][name.as_str()],
                    pinned[name.as_str()],
                    "{name}"
                );
            }
        }
        for key in ["edition", "rust-version", "license"] {
            assert_eq!(
                copy["package"][key], workspace["workspace"]["package"][key],
                "{key}"
            );
        }
        assert_eq!(
            copy["package"]["version"],
            workspace["workspace"]["package"]["version"]
        );
    }

    #[test]
    fn a_new_rust_project_has_the_sdk_and_a_refresh_rewrites_only_it() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("demo");
        let created = create(&NewArgs {
            name: "demo".into(),
            lang: Lang::Rust,
            dir: Some(dir.clone()),
            sdk: None,
        })
        .unwrap();
        assert!(created.files.contains(&"artgate-sdk/src/lib.rs".to_owned()));
        assert!(created.files.contains(&"Cargo.lock".to_owned()));
        let manifest = std::fs::read_to_string(dir.join("Cargo.toml")).unwrap();
        assert!(
            manifest.contains("artgate-sdk = { path = \"artgate-sdk\" }"),
            "{manifest}"
        );
        let lib = std::fs::read_to_string(dir.join("artgate-sdk/src/lib.rs")).unwrap();
        assert!(lib.contains(WIT_PATH_IN_COPY) && !lib.contains(WIT_PATH_IN_REPO));
        assert_eq!(
            std::fs::read_to_string(dir.join("artgate-sdk/wit/adapter.wit")).unwrap(),
            WIT
        );
        // A refresh puts back what an author changed in the copy, and
        // removes what is not the SDK's, but leaves the project alone.
        std::fs::write(dir.join("artgate-sdk/src/path.rs"), "// edited").unwrap();
        std::fs::write(dir.join("artgate-sdk/src/extra.rs"), "// stray").unwrap();
        std::fs::write(dir.join("src/lib.rs"), "// mine").unwrap();
        refresh_sdk(&dir).unwrap();
        assert_eq!(
            std::fs::read_to_string(dir.join("artgate-sdk/src/path.rs")).unwrap(),
            SDK_SOURCES.iter().find(|(n, _)| *n == "path.rs").unwrap().1
        );
        assert!(!dir.join("artgate-sdk/src/extra.rs").exists());
        assert_eq!(
            std::fs::read_to_string(dir.join("src/lib.rs")).unwrap(),
            "// mine"
        );
        // Not a project with a copy of the SDK: nothing is written.
        let other = tmp.path().join("other");
        std::fs::create_dir(&other).unwrap();
        std::fs::write(other.join("Cargo.toml"), "[package]\nname = \"x\"\n").unwrap();
        let err = refresh_sdk(&other).unwrap_err();
        assert!(err.contains("does not depend on a copy"), "{err}");
        assert!(!other.join("artgate-sdk").exists());
        assert!(refresh_sdk(&tmp.path().join("missing")).is_err());
    }

    #[test]
    fn every_case_template_parses() {
        for (rel, text) in RUST_FILES.iter().chain(PYTHON_FILES) {
            if rel.starts_with("cases/") {
                let text = text.replace("{{name}}", "demo");
                super::super::case::parse_toml(rel, &text, "demo", Path::new("."))
                    .unwrap_or_else(|e| panic!("{rel}: {e}"));
            }
        }
    }
}
