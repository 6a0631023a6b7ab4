//! What a component declares about itself, outside the WIT world: custom
//! sections named `artgate:*` that the Rust SDK's `export_adapter!(T,
//! flags…)` writes. They change nothing in the world a component targets,
//! so a component without them loads as before and an older gateway
//! ignores them.
//!
//! | section | content | SDK flag | what the gateway does |
//! | --- | --- | --- | --- |
//! | [`INSTANCES_SECTION`] | `stateless` | `stateless` | reuses instances ([`super::warm`]) |
//! | [`ON_RESPONSE_SECTION`] | `accept` | `accepts_every_response` | skips `on-response` ([`super::adapter::Adapter::on_response`]) |
//!
//! A declaration is the author's promise, and the SDK keeps the second one
//! by construction: with `accepts_every_response` the exported
//! `on-response` accepts without calling the adapter's own, so the
//! gateway skipping it changes nothing but the time a miss takes.

use wasmtime::wasmparser::{Parser, Payload};

/// Custom section by which a component declares itself stateless.
pub const INSTANCES_SECTION: &str = "artgate:instances";

/// Content of [`INSTANCES_SECTION`] that declares an adapter stateless.
pub const STATELESS: &[u8] = b"stateless";

/// Custom section by which a component declares that its `on-response`
/// accepts every upstream answer as it is.
pub const ON_RESPONSE_SECTION: &str = "artgate:on-response";

/// Content of [`ON_RESPONSE_SECTION`] that declares it.
pub const ACCEPT: &[u8] = b"accept";

/// The declarations found in a component's bytes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Declarations {
    /// No call depends on what an earlier call left in the instance.
    pub stateless: bool,
    /// `on-response` accepts every answer: the gateway need not call it.
    pub accepts_every_response: bool,
}

/// The declarations of a component: its custom sections, at the top level
/// or in any core module inside it (where the Rust toolchain puts them).
/// Bytes that do not parse declare nothing (compiling them reports the
/// error).
pub fn read(wasm: &[u8]) -> Declarations {
    let mut found = Declarations::default();
    for payload in Parser::new(0).parse_all(wasm) {
        match payload {
            Ok(Payload::CustomSection(c)) => match (c.name(), c.data()) {
                (INSTANCES_SECTION, STATELESS) => found.stateless = true,
                (ON_RESPONSE_SECTION, ACCEPT) => found.accepts_every_response = true,
                _ => {}
            },
            Ok(_) => {}
            Err(_) => return Declarations::default(),
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The smallest valid component plus one custom section.
    fn with_section(name: &str, body: &[u8]) -> Vec<u8> {
        let mut wasm = b"\0asm\x0d\0\x01\0".to_vec();
        wasm.push(0);
        wasm.push((1 + name.len() + body.len()) as u8);
        wasm.push(name.len() as u8);
        wasm.extend_from_slice(name.as_bytes());
        wasm.extend_from_slice(body);
        wasm
    }

    fn built_in(name: &str) -> Declarations {
        let wasm = std::fs::read(format!("{}/{name}.wasm", env!("ARTGATE_ADAPTERS_DIR")))
            .expect("built-in");
        read(&wasm)
    }

    /// Every built-in declares itself stateless (inside its core module,
    /// where the Rust toolchain puts the section); those whose
    /// `on-response` is the SDK's default declare that it accepts, and the
    /// two that look at upstream answers (docker's token dance and digest,
    /// git's refs) do not.
    #[test]
    fn built_ins_declare_what_they_do() {
        for name in [
            "alpine", "cargo", "cas", "generic", "go", "npm", "pypi", "rpm",
        ] {
            assert_eq!(
                built_in(name),
                Declarations {
                    stateless: true,
                    accepts_every_response: true
                },
                "{name}"
            );
        }
        for name in ["docker", "git", "hostile"] {
            assert_eq!(
                built_in(name),
                Declarations {
                    stateless: true,
                    accepts_every_response: false
                },
                "{name}"
            );
        }
    }

    /// Only the exact section name and content declare something; bytes
    /// that are not wasm declare nothing.
    #[test]
    fn only_the_exact_content_declares() {
        assert_eq!(read(b"\0asm\x0d\0\x01\0"), Declarations::default());
        assert_eq!(
            read(&with_section(INSTANCES_SECTION, b"stateful")),
            Declarations::default()
        );
        assert_eq!(
            read(&with_section(ON_RESPONSE_SECTION, b"retry")),
            Declarations::default()
        );
        assert!(read(&with_section(INSTANCES_SECTION, STATELESS)).stateless);
        assert!(read(&with_section(ON_RESPONSE_SECTION, ACCEPT)).accepts_every_response);
        assert_eq!(read(b"not wasm at all"), Declarations::default());
    }
}
