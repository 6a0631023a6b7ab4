//! Real RPM tooling for the rpm adapter's end-to-end tests: `rpmbuild`
//! builds small noarch packages, `createrepo_c` makes a repository of them,
//! and `dnf` (with the `download` command of dnf-plugins-core) runs against
//! the gateway in a throw-away install root. Debian packages: `rpm`,
//! `createrepo-c`, `dnf`, `dnf-plugins-core` (see `./test.sh`).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// Panic with an install hint unless `rpmbuild`, `createrepo_c` and `dnf`
/// are on `PATH`.
pub fn require_tools() {
    for tool in ["rpmbuild", "createrepo_c", "dnf"] {
        let found = Command::new(tool).arg("--version").output().is_ok();
        assert!(
            found,
            "{tool} is not installed; run `apt-get install --no-install-recommends rpm createrepo-c dnf dnf-plugins-core` (see test.sh)"
        );
    }
}

/// Run `cmd`, panicking with its output when it fails.
fn run(cmd: &mut Command) -> Output {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    super::clients::assert_success(&format!("{cmd:?}"), &out);
    out
}

/// Build the noarch package `name-version-1.noarch.rpm` with `rpmbuild -bb`
/// in a `_topdir` below `work`, holding one file with `content`, and copy it
/// into `dest`. Returns the path of the copy.
pub fn build_rpm(work: &Path, dest: &Path, name: &str, version: &str, content: &str) -> PathBuf {
    let top = work.join(format!("rpmbuild-{name}-{version}"));
    std::fs::create_dir_all(top.join("SPECS")).unwrap();
    std::fs::create_dir_all(top.join("SOURCES")).unwrap();
    std::fs::write(top.join("SOURCES/payload.txt"), content).unwrap();
    let spec = top.join(format!("SPECS/{name}.spec"));
    std::fs::write(
        &spec,
        format!(
            "Name: {name}\nVersion: {version}\nRelease: 1\nSummary: artgate test package {name}\n\
             License: MIT\nBuildArch: noarch\nSource0: payload.txt\n\n\
             %description\nA package built by artgate's tests.\n\n\
             %install\nmkdir -p %{{buildroot}}/usr/share/{name}\n\
             install -m 0644 %{{SOURCE0}} %{{buildroot}}/usr/share/{name}/payload.txt\n\n\
             %files\n/usr/share/{name}/payload.txt\n"
        ),
    )
    .unwrap();
    run(Command::new("rpmbuild")
        .arg("-bb")
        .arg("--quiet")
        .arg("--define")
        .arg(format!("_topdir {}", top.display()))
        .arg("--define")
        .arg(format!("_tmppath {}", top.join("tmp").display()))
        .arg(&spec));
    let file = format!("{name}-{version}-1.noarch.rpm");
    let built = top.join("RPMS/noarch").join(&file);
    std::fs::create_dir_all(dest).unwrap();
    let copy = dest.join(&file);
    std::fs::copy(&built, &copy)
        .unwrap_or_else(|e| panic!("copy {} → {}: {e}", built.display(), copy.display()));
    copy
}

/// `createrepo_c` the directory `dir` (`--update` reuses the metadata of
/// unchanged packages, as mirrors do).
pub fn createrepo(dir: &Path, update: bool) {
    let mut cmd = Command::new("createrepo_c");
    cmd.arg("--quiet");
    if update {
        cmd.arg("--update");
    }
    run(cmd.arg(dir));
}

/// `dnf` with a throw-away install root and cache, whose only repository is
/// `gw` at a gateway URL.
pub struct Dnf {
    dir: tempfile::TempDir,
    baseurl: String,
}

impl Dnf {
    /// A dnf with an empty cache for the repository at `baseurl`.
    pub fn new(baseurl: &str) -> Dnf {
        Dnf {
            dir: tempfile::tempdir().unwrap(),
            baseurl: baseurl.to_owned(),
        }
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new("dnf");
        cmd.args(["-y", "-q", "--releasever=12"])
            .arg(format!(
                "--installroot={}",
                self.dir.path().join("root").display()
            ))
            .arg(format!(
                "--setopt=cachedir={}",
                self.dir.path().join("cache").display()
            ))
            .arg("--setopt=reposdir=/dev/null")
            .arg(format!("--repofrompath=gw,{}", self.baseurl))
            .args(["--setopt=gw.gpgcheck=0", "--setopt=gw.retries=1"])
            .args(args)
            .env_remove("http_proxy")
            .env_remove("HTTP_PROXY");
        cmd
    }

    /// Run `dnf ARGS`, without blocking the runtime; panics with dnf's
    /// output when it fails. Returns stdout.
    pub async fn run(&self, args: &[&str]) -> String {
        let out = self.try_run(args).await;
        super::clients::assert_success(&format!("dnf {args:?}"), &out);
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Run `dnf ARGS` and return its output whether or not it succeeded.
    pub async fn try_run(&self, args: &[&str]) -> Output {
        let mut cmd = self.command(args);
        tokio::task::spawn_blocking(move || {
            cmd.output()
                .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"))
        })
        .await
        .unwrap()
    }

    /// `dnf repoquery --available`: the `name-version` of every package.
    pub async fn available(&self, extra: &[&str]) -> Vec<String> {
        let mut args = extra.to_vec();
        args.extend(["repoquery", "--available", "--qf", "%{name}-%{version}"]);
        let mut names: Vec<String> = self
            .run(&args)
            .await
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(str::to_owned)
            .collect();
        names.sort();
        names
    }

    /// `dnf download --destdir DEST PACKAGES`.
    pub async fn download(&self, dest: &Path, packages: &[&str]) -> Output {
        let dest = format!("--destdir={}", dest.display());
        let mut args = vec!["download", dest.as_str()];
        args.extend(packages);
        self.try_run(&args).await
    }
}
