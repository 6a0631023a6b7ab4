//! The operator console (`/ui/`) in a real browser: Debian's headless
//! chromium driven through chromedriver (`support/browser.rs`), with the
//! page's console errors and screenshots in `target/console-screenshots/`.
//! First the harness itself, on pages an in-process server serves.

use crate::support::browser::Browser;
use crate::support::gateway::Gateway;
use crate::support::upstream::{Resource, Upstream};
use crate::support::{bytes, sha256_hex};
use fantoccini::Locator;
use std::path::Path;
use std::time::{Duration, Instant};

// ---- The browser harness (support/browser.rs) ----

/// A page without errors (its icon is inline, so chromium fetches no
/// `/favicon.ico`).
const CLEAN_PAGE: &str = r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>artgate harness: clean</title>
<link rel="icon" href="data:,"></head>
<body><h1 id="greeting">A clean page</h1><p>Nothing goes wrong here.</p></body></html>"#;

/// A page that logs an error and loads an image that is not there.
const BAD_PAGE: &str = r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>artgate harness: bad</title>
<link rel="icon" href="data:,"></head>
<body><script>console.error("boom-123");</script><img src="/missing-123.png" alt=""></body></html>"#;

/// A page whose inline script its own Content-Security-Policy forbids.
const CSP_PAGE: &str = r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>artgate harness: csp</title></head>
<body><script>document.title = "the script ran";</script></body></html>"#;

/// A phone page: the width of the device, as the console's pages must be.
const PHONE_PAGE: &str = r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>artgate harness: phone</title><link rel="icon" href="data:,"></head>
<body><p>A phone-sized page.</p></body></html>"#;

/// Serve `body` as HTML at `path`, with `headers`.
fn put_html(up: &Upstream, path: &str, body: &'static str, headers: &[(&str, &str)]) {
    up.put(
        path,
        Resource {
            body: body.into(),
            content_type: Some("text/html; charset=utf-8".into()),
            headers: headers
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
            ..Default::default()
        },
    );
}

/// The console errors `browser` reports from now until `done` holds for
/// all of them together; fails showing them after 10 s.
async fn errors_until(browser: &Browser, done: impl Fn(&[String]) -> bool) -> Vec<String> {
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut all = Vec::new();
    loop {
        all.extend(browser.console_errors().await);
        if done(&all) {
            return all;
        }
        assert!(
            Instant::now() < deadline,
            "timed out waiting for the console errors; got {all:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Width and height of the PNG file at `path`, after checking its
/// signature and that its first chunk is `IHDR`.
fn png_size(path: &Path) -> (u32, u32) {
    let png = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert!(
        png.starts_with(b"\x89PNG\r\n\x1a\n"),
        "{} is not a PNG ({} bytes)",
        path.display(),
        png.len()
    );
    assert_eq!(png.get(12..16), Some(&b"IHDR"[..]), "no IHDR chunk first");
    let be = |r: std::ops::Range<usize>| {
        u32::from_be_bytes(png.get(r).and_then(|b| b.try_into().ok()).expect("IHDR"))
    };
    (be(16..20), be(20..24))
}

/// The harness drives a real chromium: it reads a clean page's title back
/// through WebDriver and sees no console error there; on a bad page it
/// sees the `console.error` and the 404 of a missing image, then nothing
/// more once back on the clean page (each call drains the log); a CSP
/// violation is an error too; and a screenshot is a PNG of the 1280×900
/// viewport.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn browser_harness_sees_console_errors_and_takes_screenshots() {
    let up = Upstream::start().await;
    put_html(&up, "/clean.html", CLEAN_PAGE, &[]);
    put_html(&up, "/bad.html", BAD_PAGE, &[]);
    put_html(
        &up,
        "/csp.html",
        CSP_PAGE,
        &[("content-security-policy", "default-src 'self'")],
    );
    let browser = Browser::start().await;
    let c = browser.client();

    c.goto(&format!("{}/clean.html", up.url()))
        .await
        .expect("open the clean page");
    assert_eq!(c.title().await.expect("title"), "artgate harness: clean");
    let h1 = c
        .find(fantoccini::Locator::Css("#greeting"))
        .await
        .expect("find the heading");
    assert_eq!(h1.text().await.expect("heading text"), "A clean page");
    assert_eq!(browser.console_errors().await, Vec::<String>::new());

    let shot = browser.screenshot("harness").await;
    assert_eq!(
        shot.file_name().and_then(|n| n.to_str()),
        Some("harness.png")
    );
    assert!(
        shot.ends_with("target/console-screenshots/harness.png"),
        "{}",
        shot.display()
    );
    assert_eq!(png_size(&shot), (1280, 900), "{}", shot.display());

    c.goto(&format!("{}/bad.html", up.url()))
        .await
        .expect("open the bad page");
    assert_eq!(c.title().await.expect("title"), "artgate harness: bad");
    let errors = errors_until(&browser, |e| e.len() >= 2).await;
    assert_eq!(errors.len(), 2, "{errors:?}");
    assert!(
        errors
            .iter()
            .any(|e| e.starts_with("console-api: ") && e.contains("boom-123")),
        "no console.error in {errors:?}"
    );
    assert!(
        errors.iter().any(|e| e.starts_with("network: ")
            && e.contains("/missing-123.png")
            && e.contains("404")),
        "no 404 of the image in {errors:?}"
    );
    assert_eq!(up.seen("/missing-123.png").gets, 1);

    c.goto(&format!("{}/clean.html", up.url()))
        .await
        .expect("open the clean page again");
    assert_eq!(browser.console_errors().await, Vec::<String>::new());

    c.goto(&format!("{}/csp.html", up.url()))
        .await
        .expect("open the CSP page");
    assert_eq!(
        c.title().await.expect("title"),
        "artgate harness: csp",
        "the forbidden inline script ran"
    );
    errors_until(&browser, |e| {
        e.iter()
            .any(|e| e.starts_with("security: ") && e.contains("inline script"))
    })
    .await;

    browser.close().await;
}

/// The window (innerWidth, innerHeight) of the page `c` shows.
async fn viewport(c: &fantoccini::Client) -> serde_json::Value {
    c.execute("return [window.innerWidth, window.innerHeight];", vec![])
        .await
        .expect("read the viewport")
}

/// `start_sized` gives a desktop viewport of exactly the size asked for,
/// below chromium's smallest window too, and `start_phone` a phone: a
/// device-width page is laid out at the phone's width, a page without a
/// viewport `<meta>` at 980 pixels (zoomed out, as on a real phone); the
/// screenshots have the viewport's size.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn browser_harness_sizes_desktops_and_emulates_phones() {
    let up = Upstream::start().await;
    put_html(&up, "/phone.html", PHONE_PAGE, &[]);
    put_html(&up, "/clean.html", CLEAN_PAGE, &[]);

    let desktop = Browser::start_sized(420, 600).await;
    let c = desktop.client();
    for page in ["/phone.html", "/clean.html"] {
        c.goto(&format!("{}{page}", up.url()))
            .await
            .expect("open the page");
        assert_eq!(viewport(c).await, serde_json::json!([420, 600]), "{page}");
    }
    let shot = desktop.screenshot("harness-420x600").await;
    assert_eq!(png_size(&shot), (420, 600), "{}", shot.display());
    desktop.close().await;

    let phone = Browser::start_phone(390, 844).await;
    let c = phone.client();
    c.goto(&format!("{}/clean.html", up.url()))
        .await
        .expect("open the clean page");
    let layout = viewport(c).await;
    assert_eq!(layout[0], 980, "no meta viewport: {layout}");
    c.goto(&format!("{}/phone.html", up.url()))
        .await
        .expect("open the phone page");
    assert_eq!(viewport(c).await, serde_json::json!([390, 844]));
    let shot = phone.screenshot("harness-phone").await;
    assert_eq!(png_size(&shot), (390, 844), "{}", shot.display());
    assert_eq!(phone.console_errors().await, Vec::<String>::new());
    phone.close().await;
}

// ---- The console ----

/// A pull-through remote `mirror` in front of `up`, and a hosted one,
/// `builds`.
fn console_remotes(up: &Upstream) -> String {
    format!(
        "[[remote]]\nname = \"mirror\"\npackage = \"generic\"\nupstream = \"{}\"\n\n[[remote]]\nname = \"builds\"\npackage = \"local\"\n",
        up.url()
    )
}

/// `[[token]]` tables: `reader` reads everything, `writer` also writes and
/// deletes on `builds`, `ops` is an admin that reads everything.
fn console_tokens() -> String {
    let table = |name: &str, extra: &str| {
        format!(
            "[[token]]\nname = \"{name}\"\ntoken_sha256 = \"{}\"\n{extra}\n",
            sha256_hex(token_of(name).as_bytes())
        )
    };
    [
        table("reader", "scopes = { \"*\" = [\"read\"] }"),
        table(
            "writer",
            "scopes = { builds = [\"read\", \"write\", \"delete\"], \"*\" = [\"read\"] }",
        ),
        table("ops", "admin = true\nscopes = { \"*\" = [\"read\"] }"),
    ]
    .concat()
}

/// The secret of the test token `name`.
fn token_of(name: &str) -> String {
    format!("console-test-token-{name}-0123456789")
}

/// Open `path` of the gateway, wait for its heading, check the browser
/// reported no error, save a screenshot as `shot` and return the heading.
async fn view(b: &Browser, gw: &Gateway, path: &str, shot: &str) -> String {
    b.client().goto(&gw.url(path)).await.unwrap();
    let h1 = heading(b).await;
    let errors = b.console_errors().await;
    assert!(errors.is_empty(), "{path}: console errors {errors:?}");
    b.screenshot(shot).await;
    h1
}

/// The status of `GET url` with `c`.
async fn status_of(c: &reqwest::Client, url: &str) -> reqwest::StatusCode {
    c.get(url).send().await.unwrap().status()
}

/// `GET url` with `c`, the answer as JSON.
async fn get_json(c: &reqwest::Client, url: &str) -> serde_json::Value {
    let body = c.get(url).send().await.unwrap().bytes().await.unwrap();
    serde_json::from_slice(&body).unwrap_or_else(|e| panic!("{url}: {e}"))
}

/// Mark the page now shown, so that [`heading`] waits for the next one
/// (call it before a click or submit that navigates).
async fn leave(b: &Browser) {
    b.client()
        .execute("window.artgateLeft = true;", vec![])
        .await
        .unwrap();
}

/// The page's `<h1>`, once a page that [`leave`] did not mark has loaded.
async fn heading(b: &Browser) -> String {
    let script = "const h = document.querySelector('main h1'); \
        return window.artgateLeft !== true && document.readyState === 'complete' && h \
        ? h.textContent : null;";
    crate::support::eventually(
        "the next page's heading",
        Duration::from_secs(10),
        || async {
            b.client()
                .execute(script, vec![])
                .await
                .ok()
                .and_then(|v| v.as_str().map(|s| s.trim().to_owned()))
        },
    )
    .await
}

/// The text of the page's `<main>`.
async fn main_text(b: &Browser) -> String {
    b.client()
        .find(Locator::Css("main"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

/// A number the page's script computes.
async fn js_number(b: &Browser, script: &str) -> f64 {
    b.client()
        .execute(script, vec![])
        .await
        .unwrap()
        .as_f64()
        .unwrap_or(-1.0)
}

/// Log in through the form as `token` (the login page must be open or
/// reachable by the redirect from a console page).
async fn log_in(b: &Browser, gw: &Gateway, token: &str) {
    b.client().goto(&gw.url("/ui/login")).await.unwrap();
    let form = b.client().form(Locator::Css("form.login")).await.unwrap();
    form.set_by_name("token", token).await.unwrap();
    leave(b).await;
    form.submit().await.unwrap();
    heading(b).await;
}

/// Every view against a gateway with cached, hosted and in-flight
/// content: each renders with no browser error (the pages' CSP allows
/// only the gateway's own script and style, so a violation would show
/// here), the overview's live feed shows a slow fill's progress bar
/// advancing, and the JSON API agrees with the pages.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_view_renders_with_real_content_and_a_fill_advancing() {
    let up = Upstream::start().await;
    up.put_body("/pkg/a-1.0.tar.gz", bytes(20_000, 1));
    up.put_body("/pkg/b-2.0.tar.gz", bytes(70_000, 2));
    up.put(
        "/pkg/slow.bin",
        Resource {
            body: bytes(3 * 1024 * 1024, 3).into(),
            chunk: Some(64 * 1024),
            chunk_delay: Some(Duration::from_millis(120)),
            ..Default::default()
        },
    );
    let gw = Gateway::start(&console_remotes(&up)).await;
    let c = reqwest::Client::new();
    for p in [
        "pkg/a-1.0.tar.gz",
        "pkg/b-2.0.tar.gz",
        "pkg/a-1.0.tar.gz",
        "pkg/missing",
    ] {
        c.get(gw.url(&format!("/api/v1/remote/mirror/{p}")))
            .send()
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap();
    }
    let r = c
        .put(gw.url("/api/v1/remote/builds/app/1.0/app.bin"))
        .body(bytes(5000, 4))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    // A slow fill, running while the overview is open.
    let slow = {
        let url = gw.url("/api/v1/remote/mirror/pkg/slow.bin");
        tokio::spawn(async move {
            reqwest::get(url)
                .await
                .unwrap()
                .bytes()
                .await
                .unwrap()
                .len()
        })
    };

    let b = Browser::start().await;
    assert_eq!(view(&b, &gw, "/ui/", "overview-start").await, "Overview");
    // The fill shows in the table with a progress bar that the live feed
    // moves forward.
    let progress = "const p = document.querySelector('#fills progress'); return p ? p.value : -1;";
    let first = crate::support::eventually(
        "the slow fill in the fills table",
        Duration::from_secs(10),
        || async {
            let v = js_number(&b, progress).await;
            (v > 0.0 && v < 100.0).then_some(v)
        },
    )
    .await;
    let later = crate::support::eventually(
        "the fill's progress to advance",
        Duration::from_secs(10),
        || async {
            let v = js_number(&b, progress).await;
            (v > first).then_some(v)
        },
    )
    .await;
    assert!(later > first);
    let fills_text = b
        .client()
        .find(Locator::Css("#fills"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        fills_text.contains("pkg/slow.bin") && fills_text.contains("mirror"),
        "{fills_text}"
    );
    b.screenshot("overview").await;
    assert!(js_number(&b, "return Number(document.body.dataset.liveUpdates || 0);").await >= 1.0);
    assert_eq!(slow.await.unwrap(), 3 * 1024 * 1024);
    let errors = b.console_errors().await;
    assert!(errors.is_empty(), "overview: console errors {errors:?}");

    assert_eq!(view(&b, &gw, "/ui/remotes", "remotes").await, "Remotes");
    let text = main_text(&b).await;
    assert!(
        text.contains("mirror")
            && text.contains("builds")
            && text.contains("pull-through")
            && text.contains("hosted"),
        "{text}"
    );

    assert_eq!(
        view(&b, &gw, "/ui/remotes/mirror", "remote").await,
        "Remote mirror"
    );
    let text = main_text(&b).await;
    // The miss of a missing file is among the recent misses and errors.
    assert!(text.contains("/api/v1/remote/mirror/pkg/missing"), "{text}");
    assert!(
        text.contains(&up.url()),
        "the configuration shows the upstream: {text}"
    );

    assert_eq!(
        view(&b, &gw, "/ui/remotes/mirror/browse", "browse").await,
        "Browse mirror"
    );
    let text = main_text(&b).await;
    for key in ["pkg/a-1.0.tar.gz", "pkg/b-2.0.tar.gz", "pkg/slow.bin"] {
        assert!(text.contains(key), "{key} missing from {text}");
    }
    // A download link gives the stored bytes.
    let href = b
        .client()
        .find(Locator::Css("#entries a[href$='a-1.0.tar.gz']"))
        .await
        .unwrap()
        .attr("href")
        .await
        .unwrap()
        .unwrap();
    let got = c.get(gw.url(&href)).send().await.unwrap();
    assert_eq!(got.status(), 200);
    assert_eq!(got.headers()["content-security-policy"], "sandbox");
    assert_eq!(got.bytes().await.unwrap().to_vec(), bytes(20_000, 1));

    assert_eq!(
        view(&b, &gw, "/ui/remotes/builds/browse", "browse-hosted").await,
        "Browse builds"
    );
    assert!(main_text(&b).await.contains("app/1.0/app.bin"));
    assert_eq!(view(&b, &gw, "/ui/plugins", "plugins").await, "Plugins");
    assert!(main_text(&b).await.contains("generic"));
    assert_eq!(view(&b, &gw, "/ui/storage", "storage").await, "Storage");

    // The API says what the pages say.
    let remotes: serde_json::Value = get_json(&c, &gw.url("/api/v1/remotes")).await;
    let mirror = remotes
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == "mirror")
        .unwrap();
    assert!(
        mirror["size_bytes"].as_u64().unwrap() >= 90_000 + 3 * 1024 * 1024,
        "{mirror}"
    );
    assert!(mirror["requests"].as_u64().unwrap() >= 5, "{mirror}");
    let entries: serde_json::Value = get_json(
        &c,
        &gw.url("/api/v1/remotes/mirror/entries?prefix=pkg/&limit=2"),
    )
    .await;
    let keys: Vec<&str> = entries["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["key"].as_str().unwrap())
        .collect();
    assert_eq!(keys, ["pkg/a-1.0.tar.gz", "pkg/b-2.0.tar.gz"]);
    assert_eq!(entries["next_after"], "pkg/b-2.0.tar.gz");
    let overview: serde_json::Value = get_json(&c, &gw.url("/api/v1/overview")).await;
    assert!(
        overview["last_hour"]["fetched_bytes"].as_u64().unwrap() >= 3 * 1024 * 1024,
        "{overview}"
    );
    assert!(
        overview["upstreams"][0]["health"]["last_success_ms"]
            .as_u64()
            .is_some(),
        "{overview}"
    );

    // A phone-sized overview, for the guide.
    let phone = Browser::start_phone(390, 844).await;
    view(&phone, &gw, "/ui/", "overview-phone").await;
    phone.close().await;
    b.close().await;
}

/// With tokens, the console asks for one; a read token looks but cannot
/// flush (neither through the page nor by posting), the admin can; forged
/// posts are refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_is_required_a_read_token_cannot_flush_and_the_admin_can() {
    let up = Upstream::start().await;
    up.put_body("/f/one.txt", "one");
    let gw = Gateway::start(&format!("{}{}", console_tokens(), console_remotes(&up))).await;
    let c = reqwest::Client::new();
    assert_eq!(
        status_of(&c, &gw.url("/api/v1/remote/mirror/f/one.txt")).await,
        200
    );
    assert_eq!(up.seen("/f/one.txt").gets, 1);
    // Without credentials the API answers 401, and pages send to the login.
    assert_eq!(status_of(&c, &gw.url("/api/v1/overview")).await, 401);

    let b = Browser::start().await;
    b.client().goto(&gw.url("/ui/remotes")).await.unwrap();
    assert_eq!(heading(&b).await, "Log in");
    assert!(
        b.client()
            .current_url()
            .await
            .unwrap()
            .as_str()
            .contains("/ui/login?next=")
    );
    assert!(b.console_errors().await.is_empty());
    b.screenshot("login").await;
    // A wrong token is refused.
    let form = b.client().form(Locator::Css("form.login")).await.unwrap();
    form.set_by_name("token", "not-a-token-at-all-000000")
        .await
        .unwrap();
    leave(&b).await;
    form.submit().await.unwrap();
    heading(&b).await;
    assert!(main_text(&b).await.contains("Log in"));
    assert!(
        b.client()
            .find(Locator::Css(".notice"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
            .contains("not valid")
    );
    b.console_errors().await; // the 401 itself

    // The read token sees the views, no action, and is refused one.
    log_in(&b, &gw, &token_of("reader")).await;
    assert_eq!(
        view(&b, &gw, "/ui/remotes/mirror", "remote-reader").await,
        "Remote mirror"
    );
    assert!(
        b.client()
            .find(Locator::Css("a[href*='action=flush']"))
            .await
            .is_err(),
        "a read token is offered a flush"
    );
    // Nor does it see the remote's configuration (as `GET /config`).
    let text = main_text(&b).await;
    assert!(
        text.contains("Only admin tokens see") && !text.contains(&up.url()),
        "{text}"
    );
    b.client()
        .goto(&gw.url("/ui/confirm?action=flush&remote=mirror"))
        .await
        .unwrap();
    assert_eq!(heading(&b).await, "Forbidden");
    assert!(main_text(&b).await.contains("is not an admin token"));
    b.console_errors().await; // the 403 itself
    let reader_session = b
        .client()
        .get_named_cookie("artgate_session")
        .await
        .unwrap();
    // Posting the flush form directly, with the session and its CSRF
    // token, is refused too.
    b.client().goto(&gw.url("/ui/")).await.unwrap();
    let csrf = b
        .client()
        .find(Locator::Css("body"))
        .await
        .unwrap()
        .attr("data-csrf")
        .await
        .unwrap()
        .unwrap();
    let post = |session: &str, form: &str, site: &str| {
        c.post(gw.url("/ui/actions/flush"))
            .header("cookie", format!("artgate_session={session}"))
            .header("content-type", "application/x-www-form-urlencoded")
            .header("sec-fetch-site", site)
            .body(form.to_owned())
            .send()
    };
    let r = post(
        reader_session.value(),
        &format!("csrf={csrf}&remote=mirror"),
        "same-origin",
    )
    .await
    .unwrap();
    assert_eq!(r.status(), 403);
    assert!(r.text().await.unwrap().contains("is not an admin token"));
    let r = c
        .post(gw.url("/api/v1/remotes/mirror/flush"))
        .bearer_auth(token_of("reader"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    // Log out, and the session is gone.
    leave(&b).await;
    b.client()
        .find(Locator::Css("form[action='/ui/logout'] button"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    assert_eq!(heading(&b).await, "Log in");
    let r = c
        .get(gw.url("/api/v1/overview"))
        .header(
            "cookie",
            format!("artgate_session={}", reader_session.value()),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);

    // The admin flushes through the confirmation page.
    log_in(&b, &gw, &token_of("ops")).await;
    let admin_session = b
        .client()
        .get_named_cookie("artgate_session")
        .await
        .unwrap();
    let admin_csrf = b
        .client()
        .find(Locator::Css("body"))
        .await
        .unwrap()
        .attr("data-csrf")
        .await
        .unwrap()
        .unwrap();
    // Forged posts with the admin's session: no CSRF token, a wrong one,
    // or a cross-site request with the right one.
    for (form, site) in [
        ("remote=mirror".to_owned(), "same-origin"),
        ("csrf=0000&remote=mirror".to_owned(), "same-origin"),
        (format!("csrf={admin_csrf}&remote=mirror"), "cross-site"),
    ] {
        let r = post(admin_session.value(), &form, site).await.unwrap();
        assert_eq!(r.status(), 403, "{form} from {site}");
    }
    assert_eq!(up.seen("/f/one.txt").gets, 1);
    view(&b, &gw, "/ui/remotes/mirror", "remote-admin").await;
    assert!(
        main_text(&b).await.contains(&up.url()),
        "the admin sees the configuration"
    );
    leave(&b).await;
    b.client()
        .find(Locator::Css("a[href*='action=flush']"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    assert_eq!(heading(&b).await, "Flush");
    b.screenshot("confirm").await;
    leave(&b).await;
    b.client()
        .find(Locator::Css("form.confirm button"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    assert_eq!(heading(&b).await, "Flushed");
    let text = main_text(&b).await;
    assert!(
        text.contains("Flushed 1 entries of remote \"mirror\""),
        "{text}"
    );
    assert!(b.console_errors().await.is_empty());
    // The entry is gone: the next read goes upstream again.
    assert_eq!(
        status_of(&c, &gw.url("/api/v1/remote/mirror/f/one.txt")).await,
        200
    );
    assert_eq!(up.seen("/f/one.txt").gets, 2);
    gw.fills_settled().await;
    // The admin's API flush of one entry.
    let r = c
        .post(gw.url("/api/v1/remotes/mirror/flush?key=f/one.txt"))
        .bearer_auth(token_of("ops"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let j: serde_json::Value = serde_json::from_slice(&r.bytes().await.unwrap()).unwrap();
    assert_eq!(j["flushed"], 1, "{j}");
    b.close().await;
}

/// A file uploaded and deleted through the browse page of a hosted remote,
/// checked over plain HTTP.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upload_and_delete_through_the_browse_page() {
    let up = Upstream::start().await;
    let gw = Gateway::start(&format!("{}{}", console_tokens(), console_remotes(&up))).await;
    let c = reqwest::Client::new();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("report.bin");
    let data = bytes(150_000, 9);
    std::fs::write(&file, &data).unwrap();

    let b = Browser::start().await;
    // The reader sees no upload form.
    log_in(&b, &gw, &token_of("reader")).await;
    view(&b, &gw, "/ui/remotes/builds/browse", "browse-reader").await;
    assert!(b.client().find(Locator::Id("upload")).await.is_err());
    leave(&b).await;
    b.client()
        .find(Locator::Css("form[action='/ui/logout'] button"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    heading(&b).await;

    log_in(&b, &gw, &token_of("writer")).await;
    view(&b, &gw, "/ui/remotes/builds/browse", "browse-writer").await;
    let path = b.client().find(Locator::Id("upload-path")).await.unwrap();
    path.clear().await.unwrap();
    path.send_keys("reports/2026/report.bin").await.unwrap();
    b.client()
        .find(Locator::Id("upload-file"))
        .await
        .unwrap()
        .send_keys(file.to_str().unwrap())
        .await
        .unwrap();
    b.client()
        .find(Locator::Css("#upload button"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    // The page reloads with the new file listed.
    b.client()
        .wait()
        .at_most(Duration::from_secs(15))
        .for_element(Locator::Css("#entries a[href$='reports/2026/report.bin']"))
        .await
        .unwrap();
    b.screenshot("browse-uploaded").await;
    let got = c
        .get(gw.url("/api/v1/remote/builds/reports/2026/report.bin"))
        .send()
        .await
        .unwrap();
    assert_eq!(got.status(), 200);
    assert_eq!(got.bytes().await.unwrap().to_vec(), data);
    let errors = b.console_errors().await;
    assert!(errors.is_empty(), "{errors:?}");

    // Delete it through the confirmation page.
    leave(&b).await;
    b.client()
        .find(Locator::Css("a[href*='action=delete']"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    assert_eq!(heading(&b).await, "Delete");
    assert!(main_text(&b).await.contains("reports/2026/report.bin"));
    leave(&b).await;
    b.client()
        .find(Locator::Css("form.confirm button"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    assert_eq!(heading(&b).await, "Deleted");
    assert_eq!(
        status_of(&c, &gw.url("/api/v1/remote/builds/reports/2026/report.bin")).await,
        404
    );
    assert!(b.console_errors().await.is_empty());
    b.close().await;
}

/// A hosted remote with 100,000 entries: the browse page shows one page of
/// 100 at a time, paging by key; the prefix search narrows it; the API's
/// pages are at most 1000. The page times are printed (never asserted).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn browsing_100000_entries_stays_paged() {
    use artgate::store::{Digest, Entry, EntryIndex, MetaStore, SledMetaStore};
    const N: usize = 100_000;
    let up = Upstream::start().await;
    let remotes = console_remotes(&up);
    let gw = Gateway::start(&remotes).await;
    let c = reqwest::Client::new();
    let data = bytes(1000, 5);
    let r = c
        .put(gw.url("/api/v1/remote/builds/seed.bin"))
        .body(data.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let dir = gw.stop().await;
    // 100,000 entries of the one stored blob, written to the index while
    // the gateway is stopped (uploading them would take minutes).
    let index = dir.path().join("data").join("index");
    let meta =
        crate::support::eventually("the index to be free", Duration::from_secs(20), || async {
            SledMetaStore::open(&index).ok()
        })
        .await;
    // Each with a blob of its own: one blob referenced 100,000 times
    // would make its referrer list the size of the index.
    let seed = meta.get_entry("builds", "seed.bin").unwrap().unwrap();
    for i in 0..N {
        let key = format!("many/{i:06}.bin");
        let entry = Entry {
            blob: Digest::of(key.as_bytes()),
            ..seed.clone()
        };
        meta.put_entry("builds", &key, &entry, false).unwrap();
    }
    meta.flush().unwrap();
    drop(meta);
    let gw = Gateway::start_in(dir, &remotes).await;

    let b = Browser::start().await;
    let started = Instant::now();
    view(&b, &gw, "/ui/remotes/builds", "remote-100k").await;
    eprintln!("remote page with {N} entries: {:?}", started.elapsed());
    assert!(main_text(&b).await.contains("100000+"));
    let rows = "return document.querySelectorAll('#entries tbody tr').length;";
    let first = "return document.querySelector('#entries tbody tr td.key').textContent.trim();";
    let started = Instant::now();
    view(
        &b,
        &gw,
        "/ui/remotes/builds/browse?prefix=many/",
        "browse-100k",
    )
    .await;
    eprintln!("first browse page: {:?}", started.elapsed());
    assert_eq!(js_number(&b, rows).await, 100.0);
    let key = |b: &Browser| {
        let c = b.client().clone();
        async move {
            c.execute(first, vec![])
                .await
                .unwrap()
                .as_str()
                .unwrap()
                .to_owned()
        }
    };
    assert_eq!(key(&b).await, "many/000000.bin");
    for expected in ["many/000100.bin", "many/000200.bin"] {
        let started = Instant::now();
        leave(&b).await;
        b.client()
            .find(Locator::Css("a[rel='next']"))
            .await
            .unwrap()
            .click()
            .await
            .unwrap();
        heading(&b).await;
        eprintln!("next browse page: {:?}", started.elapsed());
        assert_eq!(key(&b).await, expected);
        assert_eq!(js_number(&b, rows).await, 100.0);
    }
    // The prefix search narrows to ten.
    let form = b.client().form(Locator::Css("form.search")).await.unwrap();
    form.set_by_name("prefix", "many/09999").await.unwrap();
    leave(&b).await;
    form.submit().await.unwrap();
    heading(&b).await;
    assert_eq!(js_number(&b, rows).await, 10.0);
    assert!(
        b.client()
            .find(Locator::Css("a[rel='next']"))
            .await
            .is_err()
    );
    assert!(b.console_errors().await.is_empty());
    // The API pages by key, at most 1000 at a time.
    let page: serde_json::Value = serde_json::from_slice(
        &c.get(
            gw.url("/api/v1/remotes/builds/entries?prefix=many/&after=many/049999.bin&limit=1000"),
        )
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap(),
    )
    .unwrap();
    let entries = page["entries"].as_array().unwrap();
    assert_eq!(entries.len(), 1000);
    assert_eq!(entries[0]["key"], "many/050000.bin");
    assert_eq!(page["next_after"], "many/050999.bin");
    let r = c
        .get(gw.url("/api/v1/remotes/builds/entries?limit=5000"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    // A stored file downloads as its bytes.
    let got = c
        .get(gw.url("/ui/remotes/builds/files/seed.bin"))
        .send()
        .await
        .unwrap();
    assert_eq!(got.bytes().await.unwrap().to_vec(), data);
    b.close().await;
}

/// Over HTTP/2 a request has no `Host` header (its `:authority` is in the
/// URI): a console action from the gateway's own origin passes the origin
/// check, one from another origin does not.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn actions_over_http2_check_the_origin_against_the_authority() {
    let up = Upstream::start().await;
    let gw = Gateway::start(&console_remotes(&up)).await;
    let h2 = reqwest::Client::builder()
        .http2_prior_knowledge()
        .build()
        .unwrap();
    let page = h2.get(gw.url("/ui/plugins")).send().await.unwrap();
    assert_eq!(page.version(), reqwest::Version::HTTP_2);
    let cookie = page.headers()["set-cookie"].to_str().unwrap().to_owned();
    let cookie = cookie.split(';').next().unwrap().to_owned();
    let csrf = cookie.trim_start_matches("artgate_csrf=").to_owned();
    let origin = gw.url("");
    let origin = origin.trim_end_matches('/');
    for (from, expected) in [(origin, 200), ("http://evil.example:8080", 403)] {
        let r = h2
            .post(gw.url("/ui/actions/rescan"))
            .header("cookie", &cookie)
            .header("origin", from)
            .header("sec-fetch-site", "same-origin")
            .header("content-type", "application/x-www-form-urlencoded")
            .body(format!("csrf={csrf}"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.version(), reqwest::Version::HTTP_2);
        let status = r.status();
        let text = r.text().await.unwrap();
        assert_eq!(status, expected, "from {from}: {text}");
    }
}
