//! Tokens and upstream credentials: where each secret comes from
//! (inline, environment, file), read and checked now; tokens are kept only
//! as their sha256.

use super::*;

/// `[[token]]` tables: a unique name, exactly one source, scopes on known
/// remotes. Tokens from `token_env` / `token_file` are read and hashed now;
/// only their sha256 is kept.
pub(super) fn validate_tokens(
    cx: &Cx<'_>,
    raw: &[RawToken],
    remotes: &[RemoteConfig],
) -> Result<Vec<TokenConfig>, ConfigError> {
    let mut out: Vec<TokenConfig> = Vec::new();
    for (i, t) in raw.iter().enumerate() {
        let numbered = format!("[[token]] #{}", i + 1);
        let name = match &t.name {
            Some(n) if !n.trim().is_empty() && !n.chars().any(char::is_control) => n.clone(),
            Some(_) => {
                return Err(invalid(
                    &numbered,
                    "name",
                    "must be non-empty, without control characters",
                ));
            }
            None => {
                return Err(invalid(
                    &numbered,
                    "name",
                    "missing; every token needs a name (it is logged instead of the token)",
                ));
            }
        };
        let scope = format!("token {name:?}");
        let scope = scope.as_str();
        if out.iter().any(|o| o.name == name) {
            return Err(invalid(scope, "name", "duplicate token name"));
        }
        let sources: Vec<&'static str> = [
            ("token_sha256", t.token_sha256.is_some()),
            ("token_env", t.token_env.is_some()),
            ("token_file", t.token_file.is_some()),
        ]
        .into_iter()
        .filter_map(|(k, set)| set.then_some(k))
        .collect();
        let source = match sources.as_slice() {
            [one] => *one,
            [] => {
                return Err(invalid(
                    scope,
                    "token_sha256",
                    "missing; give exactly one of token_sha256, token_env, token_file",
                ));
            }
            [first, second, ..] => {
                return Err(invalid(
                    scope,
                    second,
                    format!(
                        "{first} is set too; give exactly one of token_sha256, token_env, token_file"
                    ),
                ));
            }
        };
        let sha256: [u8; 32] = match (&t.token_sha256, &t.token_env, &t.token_file) {
            (Some(hex), ..) => {
                let mut d = [0u8; 32];
                hex::decode_to_slice(hex.trim(), &mut d).map_err(|_| {
                    invalid(
                        scope,
                        "token_sha256",
                        "must be 64 hex digits: the sha256 of the token (e.g. `printf %s TOKEN | sha256sum`)",
                    )
                })?;
                d
            }
            (None, Some(var), _) => hash_token(cx, scope, source, &SecretSource::Env(var))?,
            (None, None, file) => {
                let file = file.as_deref().unwrap_or(Path::new(""));
                hash_token(cx, scope, source, &SecretSource::File(file))?
            }
        };
        if let Some(o) = out.iter().find(|o| o.sha256 == sha256) {
            return Err(invalid(
                scope,
                source,
                format!("is the same token as token {:?}", o.name),
            ));
        }
        let mut scopes = Vec::new();
        for (remote, names) in t.scopes.iter().flatten() {
            let key = format!("scopes.{remote}");
            if remote != "*" && !remotes.iter().any(|r| &r.name == remote) {
                return Err(invalid(
                    scope,
                    &key,
                    format!("unknown remote {remote:?}; use a remote's name or \"*\" for all"),
                ));
            }
            let mut s = Scopes::default();
            for n in names {
                match n.as_str() {
                    "read" => s.read = true,
                    "write" => s.write = true,
                    "delete" => s.delete = true,
                    other => {
                        return Err(invalid(
                            scope,
                            &key,
                            format!(
                                "unknown scope {other:?}; expected \"read\", \"write\" or \"delete\""
                            ),
                        ));
                    }
                }
            }
            scopes.push((remote.clone(), s));
        }
        out.push(TokenConfig {
            name,
            sha256,
            source,
            admin: t.admin.unwrap_or(false),
            scopes,
        });
    }
    Ok(out)
}

/// Shortest token accepted from `token_env` / `token_file`.
const MIN_TOKEN_LEN: usize = 16;

/// Read a token from its source and return its sha256.
fn hash_token(
    cx: &Cx<'_>,
    scope: &str,
    key: &str,
    source: &SecretSource<'_>,
) -> Result<[u8; 32], ConfigError> {
    use sha2::Digest as _;
    let token = read_secret(cx, scope, key, source)?;
    if token.0.len() < MIN_TOKEN_LEN {
        return Err(invalid(
            scope,
            key,
            format!(
                "the token is shorter than {MIN_TOKEN_LEN} characters; use a long random token"
            ),
        ));
    }
    if token.0.chars().any(|c| c.is_control() || c == ' ') {
        return Err(invalid(
            scope,
            key,
            "the token contains spaces or control characters",
        ));
    }
    Ok(sha2::Sha256::digest(token.0.as_bytes()).into())
}

pub(super) fn first_token_key(r: &RawRemote) -> Option<&'static str> {
    [
        ("token", r.token.is_some()),
        ("token_env", r.token_env.is_some()),
        ("token_file", r.token_file.is_some()),
    ]
    .into_iter()
    .find_map(|(k, set)| set.then_some(k))
}

/// Where a secret comes from.
enum SecretSource<'a> {
    Literal(&'a Secret),
    Env(&'a str),
    File(&'a Path),
}

/// The sources of one secret that are set, each with its key: the literal,
/// `*_env` and `*_file` keys, in that order.
fn secret_sources<'a>(
    keys: [&'static str; 3],
    literal: Option<&'a Secret>,
    env: Option<&'a str>,
    file: Option<&'a Path>,
) -> Vec<(&'static str, SecretSource<'a>)> {
    [
        literal.map(|s| (keys[0], SecretSource::Literal(s))),
        env.map(|s| (keys[1], SecretSource::Env(s))),
        file.map(|s| (keys[2], SecretSource::File(s))),
    ]
    .into_iter()
    .flatten()
    .collect()
}

/// Username + one password source, or one token source; secrets read now.
pub(super) fn validate_credentials(
    cx: &Cx<'_>,
    scope: &str,
    r: &RawRemote,
) -> Result<Option<Credentials>, ConfigError> {
    let passwords = secret_sources(
        ["password", "password_env", "password_file"],
        r.password.as_ref(),
        r.password_env.as_deref(),
        r.password_file.as_deref(),
    );
    let tokens = secret_sources(
        ["token", "token_env", "token_file"],
        r.token.as_ref(),
        r.token_env.as_deref(),
        r.token_file.as_deref(),
    );
    if let Some((key, _)) = tokens.first()
        && (r.username.is_some() || !passwords.is_empty())
    {
        return Err(invalid(
            scope,
            key,
            "use either username with a password or a token, not both",
        ));
    }
    if let [(first, _), (second, _), ..] = tokens.as_slice() {
        return Err(invalid(
            scope,
            second,
            format!("{first} is set too; give exactly one of token, token_env, token_file"),
        ));
    }
    if let [(first, _), (second, _), ..] = passwords.as_slice() {
        return Err(invalid(
            scope,
            second,
            format!(
                "{first} is set too; give exactly one of password, password_env, password_file"
            ),
        ));
    }
    match (&r.username, passwords.first(), tokens.first()) {
        (None, None, None) => Ok(None),
        (Some(_), None, _) => Err(invalid(
            scope,
            "username",
            "needs a password: set one of password, password_env, password_file",
        )),
        (None, Some((key, _)), _) => Err(invalid(scope, key, "needs a username")),
        (Some(user), Some((key, source)), _) => {
            if user.is_empty() || user.contains(':') || user.chars().any(char::is_control) {
                return Err(invalid(
                    scope,
                    "username",
                    "must be non-empty, without ':' or control characters (HTTP Basic)",
                ));
            }
            Ok(Some(Credentials::Basic {
                username: user.clone(),
                password: read_secret(cx, scope, key, source)?,
            }))
        }
        (None, None, Some((key, source))) => {
            let token = read_secret(cx, scope, key, source)?;
            if http::HeaderValue::from_str(&format!("Bearer {}", token.0)).is_err() {
                return Err(invalid(
                    scope,
                    key,
                    "the token has characters not allowed in an HTTP header",
                ));
            }
            Ok(Some(Credentials::Bearer { token }))
        }
    }
}

/// Read a secret. Error messages never contain the secret.
fn read_secret(
    cx: &Cx<'_>,
    scope: &str,
    key: &str,
    source: &SecretSource<'_>,
) -> Result<Secret, ConfigError> {
    let value = match source {
        SecretSource::Literal(s) => s.0.clone(),
        SecretSource::Env(var) => {
            if var.is_empty() {
                return Err(invalid(
                    scope,
                    key,
                    "the environment variable name is empty",
                ));
            }
            match (cx.env)(var) {
                None => {
                    return Err(invalid(
                        scope,
                        key,
                        format!("environment variable {var:?} is not set"),
                    ));
                }
                Some(v) => v.into_string().map_err(|_| {
                    invalid(
                        scope,
                        key,
                        format!("environment variable {var:?} is not valid UTF-8"),
                    )
                })?,
            }
        }
        SecretSource::File(p) => {
            let path = cx.path(scope, key, p)?;
            let shown = path.display().to_string();
            let mut bytes = Vec::new();
            std::fs::File::open(&path)
                .and_then(|f| f.take(MAX_SECRET_FILE + 1).read_to_end(&mut bytes))
                .map_err(|e| invalid(scope, key, format!("cannot read {shown:?}: {e}")))?;
            if bytes.len() as u64 > MAX_SECRET_FILE {
                return Err(invalid(
                    scope,
                    key,
                    format!("{shown:?} is larger than 64 KiB"),
                ));
            }
            let text = String::from_utf8(bytes)
                .map_err(|_| invalid(scope, key, format!("{shown:?} is not valid UTF-8")))?;
            text.trim_end_matches(['\n', '\r']).to_owned()
        }
    };
    if value.is_empty() {
        return Err(invalid(scope, key, "the secret is empty"));
    }
    Ok(Secret(value))
}

/// At most one of a secret's three sources (`keys`: the literal, `_env`
/// and `_file` key), read now; `None` when none is set.
pub(super) fn one_secret(
    cx: &Cx<'_>,
    scope: &str,
    keys: [&'static str; 3],
    literal: Option<&Secret>,
    env: Option<&str>,
    file: Option<&Path>,
) -> Result<Option<Secret>, ConfigError> {
    match secret_sources(keys, literal, env, file).as_slice() {
        [] => Ok(None),
        [(key, source)] => read_secret(cx, scope, key, source).map(Some),
        [(first, _), (second, _), ..] => Err(invalid(
            scope,
            second,
            format!(
                "{first} is set too; give exactly one of {}",
                keys.join(", ")
            ),
        )),
    }
}
