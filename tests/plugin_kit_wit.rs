//! WIT stability within 0.1.x: `wit/adapter.wit` may only add to the
//! released `wit/released/adapter-0.1.0.wit`. Every released type and
//! function keeps its exact shape (records, variants, enums, flags, options,
//! lists, results, tuples, parameter names and types); new types, new
//! functions in imported interfaces and new imported interfaces are
//! allowed. The interfaces the world exports (what every plugin
//! implements) and the world's export list must stay exactly as released:
//! a new export would be required of plugins built against 0.1.0.

use std::collections::BTreeMap;
use std::path::Path;
use wit_parser::{Handle, PackageId, Resolve, Type, TypeDefKind, TypeOwner, WorldItem, WorldKey};

/// Canonical text of a type: named types by `interface.name`, anonymous
/// ones structurally.
fn ty(r: &Resolve, t: &Type) -> String {
    match t {
        Type::Id(id) => {
            let def = &r.types[*id];
            match &def.name {
                Some(name) => format!("{}.{name}", owner(r, def.owner)),
                None => kind(r, &def.kind),
            }
        }
        other => format!("{other:?}").to_lowercase(),
    }
}

fn owner(r: &Resolve, o: TypeOwner) -> String {
    match o {
        TypeOwner::Interface(i) => r.interfaces[i].name.clone().unwrap_or_default(),
        TypeOwner::World(w) => r.worlds[w].name.clone(),
        TypeOwner::None => String::new(),
    }
}

fn opt(r: &Resolve, t: &Option<Type>) -> String {
    t.as_ref().map(|t| ty(r, t)).unwrap_or_else(|| "_".into())
}

/// Canonical text of a type definition's structure.
fn kind(r: &Resolve, k: &TypeDefKind) -> String {
    match k {
        TypeDefKind::Record(rec) => format!(
            "record{{{}}}",
            rec.fields
                .iter()
                .map(|f| format!("{}: {}", f.name, ty(r, &f.ty)))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        TypeDefKind::Variant(v) => format!(
            "variant{{{}}}",
            v.cases
                .iter()
                .map(|c| format!("{}({})", c.name, opt(r, &c.ty)))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        TypeDefKind::Enum(e) => format!(
            "enum{{{}}}",
            e.cases
                .iter()
                .map(|c| c.name.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ),
        TypeDefKind::Flags(f) => format!(
            "flags{{{}}}",
            f.flags
                .iter()
                .map(|c| c.name.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ),
        TypeDefKind::Tuple(t) => format!(
            "tuple<{}>",
            t.types
                .iter()
                .map(|t| ty(r, t))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        TypeDefKind::Option(t) => format!("option<{}>", ty(r, t)),
        TypeDefKind::Result(res) => format!("result<{}, {}>", opt(r, &res.ok), opt(r, &res.err)),
        TypeDefKind::List(t) => format!("list<{}>", ty(r, t)),
        TypeDefKind::Map(k, v) => format!("map<{}, {}>", ty(r, k), ty(r, v)),
        TypeDefKind::FixedLengthList(t, n) => format!("list<{}, {n}>", ty(r, t)),
        TypeDefKind::Future(t) => format!("future<{}>", opt(r, t)),
        TypeDefKind::Stream(t) => format!("stream<{}>", opt(r, t)),
        TypeDefKind::Type(t) => format!("= {}", ty(r, t)),
        TypeDefKind::Resource => "resource".into(),
        TypeDefKind::Handle(Handle::Own(id)) => format!("own<{}>", ty(r, &Type::Id(*id))),
        TypeDefKind::Handle(Handle::Borrow(id)) => format!("borrow<{}>", ty(r, &Type::Id(*id))),
        TypeDefKind::Unknown => "unknown".into(),
    }
}

/// Name → canonical text.
type Texts = BTreeMap<String, String>;

/// One package as maps: interface → (type → definition, function →
/// signature), and the worlds' import/export names.
struct Shape {
    name: String,
    interfaces: BTreeMap<String, (Texts, Texts)>,
    worlds: BTreeMap<String, (Vec<String>, Vec<String>)>,
}

fn shape(file: &Path) -> Shape {
    let mut r = Resolve::default();
    let pkg: PackageId = r
        .push_file(file)
        .unwrap_or_else(|e| panic!("{}: {e:#}", file.display()));
    let p = &r.packages[pkg];
    let mut interfaces = BTreeMap::new();
    for (name, id) in &p.interfaces {
        let iface = &r.interfaces[*id];
        let types = iface
            .types
            .iter()
            .map(|(n, t)| (n.clone(), kind(&r, &r.types[*t].kind)))
            .collect();
        let funcs = iface
            .functions
            .iter()
            .map(|(n, f)| {
                let params: Vec<String> = f
                    .params
                    .iter()
                    .map(|p| format!("{}: {}", p.name, ty(&r, &p.ty)))
                    .collect();
                (
                    n.clone(),
                    format!("func({}) -> {}", params.join(", "), opt(&r, &f.result)),
                )
            })
            .collect();
        interfaces.insert(name.clone(), (types, funcs));
    }
    let key = |k: &WorldKey, item: &WorldItem| match (k, item) {
        (WorldKey::Name(n), _) => n.clone(),
        (WorldKey::Interface(i), _) => r.interfaces[*i].name.clone().unwrap_or_default(),
    };
    let mut worlds = BTreeMap::new();
    for (name, id) in &p.worlds {
        let w = &r.worlds[*id];
        let imports = w.imports.iter().map(|(k, i)| key(k, i)).collect();
        let exports = w.exports.iter().map(|(k, i)| key(k, i)).collect();
        worlds.insert(name.clone(), (imports, exports));
    }
    Shape {
        name: p.name.to_string(),
        interfaces,
        worlds,
    }
}

/// Everything in `current` that breaks a component built against `released`.
fn breaking_changes(released: &Shape, current: &Shape) -> Vec<String> {
    let mut out = Vec::new();
    let rel_ver = released.name.rsplit_once('@').map(|(_, v)| v).unwrap_or("");
    let cur_ver = current.name.rsplit_once('@').map(|(_, v)| v).unwrap_or("");
    let minor = |v: &str| v.rsplit_once('.').map(|(m, _)| m.to_owned());
    if released.name.split('@').next() != current.name.split('@').next()
        || minor(rel_ver) != minor(cur_ver)
    {
        out.push(format!(
            "package {} is not a 0.1.x successor of {}",
            current.name, released.name
        ));
    }
    let exported: Vec<&String> = released.worlds.values().flat_map(|(_, e)| e).collect();
    for (iface, (types, funcs)) in &released.interfaces {
        let Some((ctypes, cfuncs)) = current.interfaces.get(iface) else {
            out.push(format!("interface {iface} was removed"));
            continue;
        };
        for (t, def) in types {
            match ctypes.get(t) {
                None => out.push(format!("type {iface}.{t} was removed")),
                Some(c) if c != def => out.push(format!(
                    "type {iface}.{t} changed:\n    released: {def}\n    now:      {c}"
                )),
                _ => {}
            }
        }
        for (f, sig) in funcs {
            match cfuncs.get(f) {
                None => out.push(format!("function {iface}.{f} was removed")),
                Some(c) if c != sig => out.push(format!(
                    "function {iface}.{f} changed:\n    released: {sig}\n    now:      {c}"
                )),
                _ => {}
            }
        }
        if exported.contains(&iface) {
            for f in cfuncs.keys().filter(|f| !funcs.contains_key(*f)) {
                out.push(format!(
                    "function {iface}.{f} was added to an interface plugins export: components built against {} lack it",
                    released.name
                ));
            }
        }
    }
    for (world, (imports, exports)) in &released.worlds {
        let Some((cimports, cexports)) = current.worlds.get(world) else {
            out.push(format!("world {world} was removed"));
            continue;
        };
        for i in imports.iter().filter(|i| !cimports.contains(i)) {
            out.push(format!("world {world} no longer imports {i}"));
        }
        if exports != cexports {
            out.push(format!(
                "world {world} exports changed: released {exports:?}, now {cexports:?}"
            ));
        }
    }
    out
}

fn wit_dir() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../wit")
}

/// `wit/adapter.wit` is a compatible 0.1.x successor of the released WIT.
#[test]
fn plugin_kit_wit_changes_within_0_1_are_additions_only() {
    let released = shape(&wit_dir().join("released/adapter-0.1.0.wit"));
    let current = shape(&wit_dir().join("adapter.wit"));
    assert_eq!(released.name, "artgate:adapter@0.1.0");
    assert!(!released.interfaces.is_empty() && !released.worlds.is_empty());
    let broken = breaking_changes(&released, &current);
    assert!(
        broken.is_empty(),
        "wit/adapter.wit changes the released artgate:adapter@0.1.0 ABI incompatibly \
         (plugins built against it would no longer load); add new types or functions \
         instead, or release a new minor version:\n  {}",
        broken.join("\n  ")
    );
}

/// The check itself notices a changed record, a changed signature, a new
/// function plugins would have to export, and accepts additions.
#[test]
fn plugin_kit_wit_check_catches_incompatible_edits() {
    let dir = tempfile::tempdir().unwrap();
    let released_text =
        std::fs::read_to_string(wit_dir().join("released/adapter-0.1.0.wit")).unwrap();
    let released = shape(&wit_dir().join("released/adapter-0.1.0.wit"));
    let edited = |from: &str, to: &str| {
        assert!(released_text.contains(from), "{from}");
        let p = dir.path().join("adapter.wit");
        std::fs::write(&p, released_text.replacen(from, to, 1)).unwrap();
        breaking_changes(&released, &shape(&p))
    };
    // A new field in a record.
    let b = edited(
        "        has-credentials: bool,\n",
        "        has-credentials: bool,\n        region: string,\n",
    );
    assert!(
        b.iter()
            .any(|m| m.contains("type types.remote-info changed")),
        "{b:?}"
    );
    // A changed parameter type.
    let b = edited(
        "kv-delete: func(key: string);",
        "kv-delete: func(key: list<u8>);",
    );
    assert!(
        b.iter()
            .any(|m| m.contains("function host.kv-delete changed")),
        "{b:?}"
    );
    // A function added to the exported handler.
    let b = edited(
        "    describe: func() -> adapter-info;",
        "    describe: func() -> adapter-info;\n    health: func() -> bool;",
    );
    assert!(
        b.iter().any(|m| m.contains("handler.health was added")),
        "{b:?}"
    );
    // Additions: a new host function and a new type.
    let b = edited(
        "    kv-delete: func(key: string);",
        "    kv-delete: func(key: string);\n    now-secs: func() -> u64;",
    );
    assert!(b.is_empty(), "{b:?}");
    let b = edited(
        "interface types {\n",
        "interface types {\n    /// New.\n    record extra { a: u8 }\n",
    );
    assert!(b.is_empty(), "{b:?}");
}
