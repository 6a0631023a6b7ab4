//! Maven for tests/maven.rs: a fixture repository written by the test
//! (artifacts, poms, checksum files, metadata), projects that depend on
//! it, and `mvn` run with a private `settings.xml` and local repository.
//!
//! Maven Central is unreachable here: the settings mirror `central` to
//! Debian's packaged repository `/usr/share/maven-repo`, which the Debian
//! packages `./test.sh` installs fill with the plugins `mvn compile` and
//! `mvn deploy:deploy-file` run (and junit5's BOM, which their poms
//! import). Only the fixture's artifacts come through the gateway.

use super::sha256_hex;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Panics with what to install unless `mvn` and Debian's Maven repository
/// are there.
pub fn require_mvn() {
    let ok = std::process::Command::new("mvn")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(
        ok && Path::new("/usr/share/maven-repo/org/apache/maven/plugins/maven-compiler-plugin")
            .is_dir(),
        "tests/maven.rs needs mvn and Debian's maven plugin packages: run ./test.sh (it installs them)"
    );
}

/// `group:artifact:version` of a dependency.
pub type Gav<'a> = (&'a str, &'a str, &'a str);

/// A Maven repository tree being written in a directory.
pub struct Fixture {
    /// The repository's root directory.
    pub root: PathBuf,
}

impl Fixture {
    /// An empty repository at `root`.
    pub fn new(root: &Path) -> Fixture {
        std::fs::create_dir_all(root).unwrap();
        Fixture {
            root: root.to_path_buf(),
        }
    }

    /// The directory of a version.
    fn version_dir(&self, (g, a, v): Gav<'_>) -> PathBuf {
        self.root.join(g.replace('.', "/")).join(a).join(v)
    }

    /// Writes `name` into the version's directory with its `.sha1` (`sha1`,
    /// else the right one; no `.md5`, as in many repositories).
    fn file(&self, gav: Gav<'_>, name: &str, body: &[u8], sha1: Option<String>) {
        let dir = self.version_dir(gav);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(name), body).unwrap();
        let sum = sha1.unwrap_or_else(|| sha1_hex(body));
        std::fs::write(dir.join(format!("{name}.sha1")), sum).unwrap();
    }

    /// Adds a release (or, with `file_version` set, a timestamped snapshot
    /// file set) of `gav` depending on `deps`: a pom and a jar; with
    /// `bad_sha1` the jar's `.sha1` is wrong. Returns the jar's bytes.
    pub fn add(
        &self,
        gav: Gav<'_>,
        file_version: Option<&str>,
        deps: &[Gav<'_>],
        bad_sha1: bool,
    ) -> Vec<u8> {
        let (g, a, v) = gav;
        let fv = file_version.unwrap_or(v);
        let jar = format!("jar of {g}:{a}:{fv} {}\n", "x".repeat(3000)).into_bytes();
        let sha1 = bad_sha1.then(|| "0".repeat(40));
        self.file(gav, &format!("{a}-{fv}.jar"), &jar, sha1);
        self.file(
            gav,
            &format!("{a}-{fv}.pom"),
            pom(gav, deps).as_bytes(),
            None,
        );
        jar
    }

    /// Writes the artifact-level `maven-metadata.xml` of `g:a` listing
    /// `versions` (the last is latest and release), with its `.sha1`.
    pub fn versions(&self, g: &str, a: &str, versions: &[&str]) {
        let dir = self.root.join(g.replace('.', "/")).join(a);
        let last = versions.last().copied().unwrap_or_default();
        let list: String = versions
            .iter()
            .map(|v| format!("      <version>{v}</version>\n"))
            .collect();
        let doc = format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<metadata>\n  <groupId>{g}</groupId>\n  <artifactId>{a}</artifactId>\n  <versioning>\n    <latest>{last}</latest>\n    <release>{last}</release>\n    <versions>\n{list}    </versions>\n    <lastUpdated>20261201120000</lastUpdated>\n  </versioning>\n</metadata>\n"
        );
        write_with_sha1(&dir, "maven-metadata.xml", doc.as_bytes());
    }

    /// Writes a snapshot version's `maven-metadata.xml` naming build
    /// `file_version` (`1.0-20261201.120000-1`) for its jar and pom.
    pub fn snapshot_metadata(&self, gav: Gav<'_>, file_version: &str) {
        let (g, a, v) = gav;
        let base = v.trim_end_matches("-SNAPSHOT");
        let rest = &file_version[base.len() + 1..];
        let (ts, build) = rest.rsplit_once('-').unwrap();
        let sv = |ext: &str| {
            format!(
                "      <snapshotVersion>\n        <extension>{ext}</extension>\n        <value>{file_version}</value>\n        <updated>20261201120000</updated>\n      </snapshotVersion>\n"
            )
        };
        let doc = format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<metadata modelVersion=\"1.1.0\">\n  <groupId>{g}</groupId>\n  <artifactId>{a}</artifactId>\n  <version>{v}</version>\n  <versioning>\n    <snapshot>\n      <timestamp>{ts}</timestamp>\n      <buildNumber>{build}</buildNumber>\n    </snapshot>\n    <lastUpdated>20261201120000</lastUpdated>\n    <snapshotVersions>\n{}{}    </snapshotVersions>\n  </versioning>\n</metadata>\n",
            sv("jar"),
            sv("pom")
        );
        write_with_sha1(&self.version_dir(gav), "maven-metadata.xml", doc.as_bytes());
    }
}

fn write_with_sha1(dir: &Path, name: &str, body: &[u8]) {
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(dir.join(name), body).unwrap();
    std::fs::write(dir.join(format!("{name}.sha1")), sha1_hex(body)).unwrap();
}

/// The SHA-1 of `body` in hex.
pub fn sha1_hex(body: &[u8]) -> String {
    use sha1::Digest;
    sha1::Sha1::digest(body)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// A pom of `gav` with `deps` (compile scope; a version may be a range).
pub fn pom((g, a, v): Gav<'_>, deps: &[Gav<'_>]) -> String {
    let deps: String = deps
        .iter()
        .map(|(g, a, v)| {
            format!("    <dependency><groupId>{g}</groupId><artifactId>{a}</artifactId><version>{v}</version></dependency>\n")
        })
        .collect();
    format!(
        "<project xmlns=\"http://maven.apache.org/POM/4.0.0\">\n  <modelVersion>4.0.0</modelVersion>\n  <groupId>{g}</groupId>\n  <artifactId>{a}</artifactId>\n  <version>{v}</version>\n  <dependencies>\n{deps}  </dependencies>\n</project>\n"
    )
}

/// A project directory `dir` whose pom depends on `deps`.
pub fn project(dir: &Path, deps: &[Gav<'_>]) -> PathBuf {
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(
        dir.join("pom.xml"),
        pom(("test.consumer", "app", "1"), deps),
    )
    .unwrap();
    dir.to_path_buf()
}

/// A `settings.xml` at `path`: `central` mirrored to Debian's repository,
/// `repo_url` the one repository of the fixture (checksums must match),
/// and, with `server`, the credentials `deploy` sends to the server id
/// `gateway`.
pub fn settings(path: &Path, repo_url: &str, server: Option<&str>) -> PathBuf {
    let servers = server
        .map(|token| {
            format!("  <servers><server><id>gateway</id><username>ci</username><password>{token}</password></server></servers>\n")
        })
        .unwrap_or_default();
    let policy = "<checksumPolicy>fail</checksumPolicy>";
    std::fs::write(
        path,
        format!(
            "<settings>\n{servers}  <mirrors><mirror><id>debian</id><mirrorOf>central</mirrorOf><url>file:///usr/share/maven-repo</url></mirror></mirrors>\n  <profiles><profile><id>gateway</id><repositories><repository><id>gateway</id><url>{repo_url}</url>\n    <releases>{policy}</releases><snapshots><enabled>true</enabled>{policy}</snapshots>\n  </repository></repositories></profile></profiles>\n  <activeProfiles><activeProfile>gateway</activeProfile></activeProfiles>\n</settings>\n"
        ),
    )
    .unwrap();
    path.to_path_buf()
}

/// `mvn -B -q` in `project` with `settings` and the local repository
/// `local`, then `args`.
pub fn mvn(project: &Path, settings: &Path, local: &Path, args: &[&str]) -> Command {
    let mut c = Command::new("mvn");
    c.current_dir(project)
        .args(["-B", "-q", "-s"])
        .arg(settings)
        .arg(format!("-Dmaven.repo.local={}", local.display()))
        .args(args)
        // No proxy from the environment, and no user-wide settings.
        .env_remove("http_proxy")
        .env_remove("HTTP_PROXY")
        .env_remove("MAVEN_OPTS")
        .env_remove("MAVEN_ARGS");
    c
}

/// The sha256 of the file `rel` (a repository path) in the local
/// repository `local`, if it is there.
pub fn local_sha256(local: &Path, rel: &str) -> Option<String> {
    std::fs::read(local.join(rel)).ok().map(|b| sha256_hex(&b))
}
