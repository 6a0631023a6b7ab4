//! `artgate plugin new NAME [--lang rust|python] [--dir D]`: write a ready
//! adapter project from the templates in `templates/` (embedded with
//! `include_str!`): sources, a README, and `cases/` with golden cases for
//! `artgate plugin check`.

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
    /// Path of the `artgate-sdk` crate (Rust; default: found by walking up
    /// from the project directory and the working directory to an artgate
    /// checkout's `plugins/sdk`).
    pub sdk: Option<PathBuf>,
}

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
    let ok = !name.is_empty()
        && name.len() <= 64
        && name.as_bytes()[0].is_ascii_lowercase()
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_');
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
        Lang::Rust => sdk_dependency(args.sdk.as_deref(), &dir)?,
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

/// The `artgate-sdk = ...` line and a sentence describing it.
fn sdk_dependency(explicit: Option<&Path>, dir: &Path) -> Result<(String, String), String> {
    let found = match explicit {
        Some(p) => {
            if !p.join("Cargo.toml").is_file() {
                return Err(format!(
                    "--sdk {}: no Cargo.toml there (give the artgate-sdk crate directory, plugins/sdk in an artgate checkout)",
                    p.display()
                ));
            }
            Some(p.to_path_buf())
        }
        None => find_sdk(dir),
    };
    Ok(match found {
        Some(p) => {
            let p = std::fs::canonicalize(&p).unwrap_or(p);
            let shown = p.display().to_string();
            (
                format!("artgate-sdk = {{ path = {shown:?} }}"),
                format!("by path, at the artgate checkout it was generated in ({shown})"),
            )
        }
        None => (
            "# artgate-sdk is not on crates.io: point this at an artgate checkout\n\
             # (path) or your artgate git repository (see README.md).\n\
             artgate-sdk = { path = \"../artgate/plugins/sdk\" }"
                .to_owned(),
            "with a placeholder path (no artgate checkout was found around the project); edit it"
                .to_owned(),
        ),
    })
}

/// `plugins/sdk` of an artgate checkout above `dir` or the working
/// directory.
fn find_sdk(dir: &Path) -> Option<PathBuf> {
    let cwd = std::env::current_dir().ok();
    let abs = if dir.is_absolute() {
        dir.to_path_buf()
    } else {
        cwd.as_ref()?.join(dir)
    };
    let starts = [Some(abs), cwd];
    for start in starts.iter().flatten() {
        for anc in start.ancestors() {
            let sdk = anc.join("plugins/sdk");
            if is_artgate_sdk(&sdk) {
                return Some(sdk);
            }
        }
    }
    None
}

fn is_artgate_sdk(dir: &Path) -> bool {
    std::fs::read_to_string(dir.join("Cargo.toml"))
        .is_ok_and(|t| t.contains("name = \"artgate-sdk\""))
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
