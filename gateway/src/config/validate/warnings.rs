//! Settings that are valid but probably not what was meant.

use super::*;

/// Settings that are valid but probably not what was meant, one sentence
/// each (`artgate check` prints them, the gateway logs them at startup):
/// a virtual remote that looks more open than a remote it reaches. Access
/// control refuses what the member refuses (`auth.rs`), so such reads or
/// writes fail rather than leak; the warning says why before a client
/// finds out.
pub(in crate::config) fn warnings(config: &Config) -> Vec<String> {
    let mut out = Vec::new();
    if config.tokens.is_empty() {
        return out;
    }
    for v in config
        .remotes
        .iter()
        .filter(|r| r.mode == RemoteMode::Virtual)
    {
        let members = config.reached(v, false);
        if v.anonymous_read
            && let Some(m) = members.iter().find(|m| !m.anonymous_read)
        {
            out.push(format!(
                "remote {:?}: anonymous_read is true but its member {:?} has anonymous_read = false, so anonymous reads through {:?} are refused; set anonymous_read = false on {:?}",
                v.name, m.name, v.name, v.name
            ));
        }
        for t in &config.tokens {
            let on = |r: &RemoteConfig| crate::auth::scopes_on(t, &r.name);
            if on(v).read
                && let Some(m) = members.iter().find(|m| !m.anonymous_read && !on(m).read)
            {
                out.push(format!(
                    "token {:?} has the read scope on virtual remote {:?} but not on its member {:?}, so its reads through {:?} are refused",
                    t.name, v.name, m.name, v.name
                ));
            }
            let Some(m) = v.write_to.as_deref().and_then(|w| config.remote(w)) else {
                continue;
            };
            for (scope, on_virtual, on_member) in [
                ("write", on(v).write, on(m).write),
                ("delete", on(v).delete, on(m).delete),
            ] {
                if on_virtual && !on_member {
                    out.push(format!(
                        "token {:?} has the {scope} scope on virtual remote {:?} but not on its write_to member {:?}, so it cannot {scope} through {:?}",
                        t.name, v.name, m.name, v.name
                    ));
                }
            }
        }
    }
    out
}
