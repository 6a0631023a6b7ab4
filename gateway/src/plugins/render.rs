//! Adapter outputs as JSON, and the field-by-field comparison golden cases
//! use (`artgate plugin check`).
//!
//! The JSON form follows the WIT names: records are objects with the WIT
//! field names (kebab-case), variants are `{"case": payload}` (`"case"`
//! alone when there is no payload), enums are their case names, options are
//! `null` or the value, header lists are objects keyed by the lower-cased
//! name (a repeated name gives an array of values), and bodies are text
//! when they are UTF-8 (`{"base64": "..."}` otherwise).

use super::wit;
use base64::Engine as _;
use serde_json::{Map, Value, json};

/// A decision returned by `plan`.
pub fn decision(d: &wit::Decision) -> Value {
    match d {
        wit::Decision::Forward(f) => json!({"forward": {
            "upstream": upstream_request(&f.upstream),
            "plan": cache_plan(&f.plan),
        }}),
        wit::Decision::Respond(r) => json!({"respond": {
            "status": r.status,
            "headers": headers(&r.headers),
            "body": body(&r.body),
        }}),
        wit::Decision::Reject(r) => json!({"reject": rejection(r)}),
        wit::Decision::ReadBody(n) => json!({"read-body": n}),
        wit::Decision::Hosted(op) => json!({"hosted": hosted_op(op)}),
    }
}

/// The answer of `on-response`.
pub fn after_headers(a: &wit::AfterHeaders) -> Value {
    match a {
        wit::AfterHeaders::Accept => json!("accept"),
        wit::AfterHeaders::Update(u) => json!({"update": plan_update(u)}),
        wit::AfterHeaders::Retry(r) => json!({"retry": upstream_request(r)}),
        wit::AfterHeaders::Fail(r) => json!({"fail": rejection(r)}),
    }
}

/// The answer of `inspect-body`.
pub fn body_verdict(v: &wit::BodyVerdict) -> Value {
    json!({
        "replace": v.replace.as_deref().map(body),
        "references": v.references,
        "prefetch": v.prefetch,
        "update": v.update.as_ref().map(plan_update),
        "fail": v.fail.as_ref().map(rejection),
    })
}

/// What `describe` returned.
pub fn adapter_info(i: &wit::AdapterInfo) -> Value {
    json!({"name": i.name, "version": i.version, "package-types": i.package_types})
}

fn upstream_request(u: &wit::UpstreamRequest) -> Value {
    json!({
        "method": u.method,
        "target": u.target,
        "headers": headers(&u.headers),
        "forward-body": u.forward_body,
        "use-credentials": u.use_credentials,
    })
}

fn cache_plan(p: &wit::CachePlan) -> Value {
    json!({
        "key": p.key,
        "class": cache_class(p.class),
        "ttl-secs": p.ttl_secs,
        "validator": p.validator.as_ref().map(validator),
        "content-type": p.content_type,
        "expected-digest": p.expected_digest,
        "response-headers": headers(&p.response_headers),
        "inspect-limit": p.inspect_limit,
        "cache-not-found": p.cache_not_found,
        "vary": p.vary,
    })
}

fn cache_class(c: wit::CacheClass) -> &'static str {
    match c {
        wit::CacheClass::Immutable => "immutable",
        wit::CacheClass::Mutable => "mutable",
        wit::CacheClass::NoStore => "no-store",
    }
}

fn validator(v: &wit::Validator) -> Value {
    match v {
        wit::Validator::Conditional => json!("conditional"),
        wit::Validator::HeadCompare(h) => json!({"head-compare": h}),
        wit::Validator::Refetch => json!("refetch"),
    }
}

fn rejection(r: &wit::Rejection) -> Value {
    json!({"status": r.status, "message": r.message, "code": r.code})
}

fn hosted_op(op: &wit::HostedOp) -> Value {
    match op {
        wit::HostedOp::Read(r) => json!({"read": {
            "key": r.key,
            "content-type": r.content_type,
            "response-headers": headers(&r.response_headers),
        }}),
        wit::HostedOp::Write(w) => json!({"write": {
            "key": w.key,
            "content-type": w.content_type,
            "expected-digest": w.expected_digest,
            "refuse-overwrite": w.refuse_overwrite,
            "inspect-limit": w.inspect_limit,
        }}),
        wit::HostedOp::Delete(k) => json!({"delete": k}),
        wit::HostedOp::List(l) => json!({"list": {
            "prefix": l.prefix,
            "after": l.after,
            "limit": l.limit,
        }}),
    }
}

fn plan_update(u: &wit::PlanUpdate) -> Value {
    json!({
        "class": u.class.map(cache_class),
        "ttl-secs": u.ttl_secs,
        "content-type": u.content_type,
        "expected-digest": u.expected_digest,
        "add-headers": headers(&u.add_headers),
    })
}

/// Headers as an object keyed by lower-cased name.
pub fn headers(hs: &[wit::Header]) -> Value {
    let mut m = Map::new();
    for h in hs {
        let name = h.name.to_ascii_lowercase();
        match m.get_mut(&name) {
            None => {
                m.insert(name, Value::String(h.value.clone()));
            }
            Some(Value::Array(a)) => a.push(Value::String(h.value.clone())),
            Some(v) => {
                let first = v.take();
                *v = Value::Array(vec![first, Value::String(h.value.clone())]);
            }
        }
    }
    Value::Object(m)
}

/// A body: text when UTF-8, else `{"base64": ...}`.
pub fn body(b: &[u8]) -> Value {
    match std::str::from_utf8(b) {
        Ok(s) => Value::String(s.to_owned()),
        Err(_) => json!({"base64": base64::engine::general_purpose::STANDARD.encode(b)}),
    }
}

/// Compare `actual` against `expected`, field by field: only the fields
/// `expected` names are compared (recursively in objects); arrays must have
/// the same length; `{"contains": "text"}` matches a string containing the
/// text. Returns one line per difference, `path: expected X, got Y`.
pub fn compare(expected: &Value, actual: &Value) -> Vec<String> {
    let mut out = Vec::new();
    walk(expected, actual, "", &mut out);
    out
}

fn walk(expected: &Value, actual: &Value, path: &str, out: &mut Vec<String>) {
    let here = if path.is_empty() { "(decision)" } else { path };
    match expected {
        Value::Object(exp) => {
            if let (Some(Value::String(needle)), 1, Value::String(hay)) =
                (exp.get("contains"), exp.len(), actual)
            {
                if !hay.contains(needle.as_str()) {
                    out.push(format!(
                        "{here}: expected text containing {}, got {}",
                        show(&Value::String(needle.clone())),
                        show(actual)
                    ));
                }
                return;
            }
            // A unit variant written as a table (`{accept = {}}`) or a
            // variant case given where the actual is the bare case name.
            let Value::Object(act) = actual else {
                out.push(format!(
                    "{here}: expected {}, got {}",
                    show(expected),
                    show(actual)
                ));
                return;
            };
            for (k, v) in exp {
                let sub = if path.is_empty() {
                    k.clone()
                } else {
                    format!("{path}.{k}")
                };
                match act.get(k) {
                    Some(a) => walk(v, a, &sub, out),
                    None if act.len() == 1 && is_variant_key(k) => out.push(format!(
                        "{here}: expected variant {k}, got {}",
                        act.keys().next().map(String::as_str).unwrap_or("?")
                    )),
                    None => out.push(format!("{sub}: expected {}, got nothing", show(v))),
                }
            }
        }
        Value::Array(exp) => {
            let Value::Array(act) = actual else {
                out.push(format!(
                    "{here}: expected {}, got {}",
                    show(expected),
                    show(actual)
                ));
                return;
            };
            if exp.len() != act.len() {
                out.push(format!(
                    "{here}: expected {} item(s) {}, got {} {}",
                    exp.len(),
                    show(expected),
                    act.len(),
                    show(actual)
                ));
                return;
            }
            for (i, (e, a)) in exp.iter().zip(act).enumerate() {
                walk(e, a, &format!("{path}[{i}]"), out);
            }
        }
        Value::Number(e) => {
            let same = match actual {
                Value::Number(a) => e == a || e.as_f64() == a.as_f64(),
                _ => false,
            };
            if !same {
                out.push(format!(
                    "{here}: expected {}, got {}",
                    show(expected),
                    show(actual)
                ));
            }
        }
        _ => {
            if expected != actual {
                out.push(format!(
                    "{here}: expected {}, got {}",
                    show(expected),
                    show(actual)
                ));
            }
        }
    }
}

/// Keys that name a variant case at the top of an output.
fn is_variant_key(k: &str) -> bool {
    matches!(
        k,
        "forward"
            | "respond"
            | "reject"
            | "read-body"
            | "hosted"
            | "update"
            | "retry"
            | "fail"
            | "read"
            | "write"
            | "delete"
            | "list"
            | "head-compare"
    )
}

/// Compact JSON, cut at 300 characters.
fn show(v: &Value) -> String {
    let s = v.to_string();
    if s.chars().count() > 300 {
        let cut: String = s.chars().take(300).collect();
        format!("{cut}…")
    } else {
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subset_comparison() {
        let actual = json!({"forward": {"plan": {"key": "a", "class": "mutable", "ttl-secs": 5,
            "response-headers": {"x-a": "1"}}}});
        assert!(compare(&json!({"forward": {"plan": {"class": "mutable"}}}), &actual).is_empty());
        assert!(compare(&json!({"forward": {"plan": {"ttl-secs": 5}}}), &actual).is_empty());
        let d = compare(
            &json!({"forward": {"plan": {"class": "immutable"}}}),
            &actual,
        );
        assert_eq!(
            d,
            vec!["forward.plan.class: expected \"immutable\", got \"mutable\""]
        );
        let d = compare(&json!({"reject": {"status": 404}}), &actual);
        assert_eq!(d, vec!["(decision): expected variant reject, got forward"]);
        assert!(
            compare(
                &json!({"forward": {"plan": {"key": {"contains": "a"}}}}),
                &actual
            )
            .is_empty()
        );
        assert!(compare(&json!("accept"), &json!("accept")).is_empty());
    }

    #[test]
    fn header_objects() {
        let hs = vec![
            wit::Header {
                name: "X-A".into(),
                value: "1".into(),
            },
            wit::Header {
                name: "x-a".into(),
                value: "2".into(),
            },
        ];
        assert_eq!(headers(&hs), json!({"x-a": ["1", "2"]}));
        assert_eq!(body(&[0xff]), json!({"base64": "/w=="}));
    }
}
