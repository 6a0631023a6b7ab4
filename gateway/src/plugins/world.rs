//! Does a compiled component target the `artgate:adapter@0.1.0` world this
//! gateway provides? Checked before linking so the usual mistakes get a
//! sentence that says what is wrong (another WIT package or version, a
//! missing export, an import the host does not provide) instead of a
//! linker error.
//!
//! Versions follow the component model's semver rules, as wasmtime's linker
//! applies them: `0.1.x` components match the `0.1.0` host (same major and,
//! below 1.0, same minor); anything else is another ABI.

use wasmtime::Engine;
use wasmtime::component::Component;
use wasmtime::component::types::ComponentItem;

/// The WIT package the host implements.
pub const WIT_PACKAGE: &str = "artgate:adapter";
/// The version of [`WIT_PACKAGE`] the host implements.
pub const WIT_VERSION: &str = "0.1.0";
/// The interface adapters export.
pub const HANDLER: &str = "handler";
/// The functions of `handler` the host calls.
pub const HANDLER_FUNCS: [&str; 4] = ["describe", "plan", "on-response", "inspect-body"];

/// What a component imports and exports, for `artgate plugin check`.
#[derive(Debug, Clone, Default)]
pub struct WorldSummary {
    /// Full names of the component's imports (`wasi:io/streams@0.2.6`, ...).
    pub imports: Vec<String>,
    /// Full names of the component's exports.
    pub exports: Vec<String>,
    /// The version of `artgate:adapter/handler` it exports.
    pub handler_version: Option<String>,
}

/// Check `component` against the world; `Err` is one paragraph saying what
/// is wrong and how to fix it.
pub fn check(engine: &Engine, component: &Component) -> Result<WorldSummary, String> {
    let ty = component.component_type();
    let mut summary = WorldSummary::default();
    let mut handler = None;
    for (name, item) in ty.exports(engine) {
        summary.exports.push(name.to_owned());
        if let Some((iface, version)) = artgate_interface(name)
            && iface == HANDLER
        {
            handler = Some((name.to_owned(), version, item));
        }
    }
    for (name, _) in ty.imports(engine) {
        summary.imports.push(name.to_owned());
    }

    let Some((name, version, item)) = handler else {
        let listed = if summary.exports.is_empty() {
            "nothing".to_owned()
        } else {
            summary.exports.join(", ")
        };
        return Err(format!(
            "the component does not export {WIT_PACKAGE}/{HANDLER}@{WIT_VERSION} (it exports {listed}); \
             build it against the `adapter` world of {WIT_PACKAGE}@{WIT_VERSION} (wit/adapter.wit)"
        ));
    };
    let version = version.unwrap_or_default();
    if !compatible(&version) {
        return Err(format!(
            "the component was built for {WIT_PACKAGE}@{}, but this gateway provides {WIT_PACKAGE}@{WIT_VERSION}; \
             only 0.1.x components load here (rebuild it against this gateway's wit/adapter.wit)",
            if version.is_empty() {
                "(no version)"
            } else {
                &version
            }
        ));
    }
    summary.handler_version = Some(version);
    if let ComponentItem::ComponentInstance(inst) = item.ty {
        let have: Vec<String> = inst.exports(engine).map(|(n, _)| n.to_owned()).collect();
        let missing: Vec<&str> = HANDLER_FUNCS
            .iter()
            .copied()
            .filter(|f| !have.iter().any(|h| h == f))
            .collect();
        if !missing.is_empty() {
            return Err(format!(
                "the component's {name} export lacks {}; every adapter exports all of {}",
                missing.join(", "),
                HANDLER_FUNCS.join(", ")
            ));
        }
    } else {
        return Err(format!(
            "the component's {name} export is not an interface instance"
        ));
    }

    for name in &summary.imports {
        if let Some((iface, version)) = artgate_interface(name) {
            let version = version.unwrap_or_default();
            if !compatible(&version) {
                return Err(format!(
                    "the component imports {name}, but this gateway provides {WIT_PACKAGE}@{WIT_VERSION}; \
                     rebuild it against this gateway's wit/adapter.wit"
                ));
            }
            if iface != "host" && iface != "types" {
                return Err(format!(
                    "the component imports {name}, which {WIT_PACKAGE}@{WIT_VERSION} does not define"
                ));
            }
        } else if !name.starts_with("wasi:") {
            return Err(format!(
                "the component imports {name}, which the host does not provide (it provides \
                 {WIT_PACKAGE}/host@{WIT_VERSION} and deny-all WASI 0.2)"
            ));
        }
    }
    Ok(summary)
}

/// `artgate:adapter/{iface}[@version]` → `(iface, version)`.
fn artgate_interface(name: &str) -> Option<(&str, Option<String>)> {
    let rest = name.strip_prefix(WIT_PACKAGE)?.strip_prefix('/')?;
    Some(match rest.split_once('@') {
        Some((iface, v)) => (iface, Some(v.to_owned())),
        None => (rest, None),
    })
}

/// Whether a component built for `version` of the package links against
/// the host's [`WIT_VERSION`] (semver: same major; below 1.0 same minor).
pub fn compatible(version: &str) -> bool {
    fn parts(v: &str) -> Option<(u64, u64)> {
        let core = v.split(['-', '+']).next()?;
        let mut it = core.split('.');
        let major = it.next()?.parse().ok()?;
        let minor = it.next()?.parse().ok()?;
        it.next()?.parse::<u64>().ok()?;
        Some((major, minor))
    }
    match (parts(version), parts(WIT_VERSION)) {
        (Some((ma, mi)), Some((hma, hmi))) => ma == hma && (ma != 0 || mi == hmi),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn semver_rules() {
        assert!(compatible("0.1.0"));
        assert!(compatible("0.1.7"));
        assert!(!compatible("0.2.0"));
        assert!(!compatible("1.0.0"));
        assert!(!compatible(""));
        assert!(!compatible("0.1"));
    }

    #[test]
    fn interface_names() {
        assert_eq!(
            artgate_interface("artgate:adapter/handler@0.1.0"),
            Some(("handler", Some("0.1.0".into())))
        );
        assert_eq!(artgate_interface("wasi:io/streams@0.2.0"), None);
    }
}
